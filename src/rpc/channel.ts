import { EventEmitter } from 'node:events';
import { describeError, KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ArgsOf, Command, ResultOf } from './command.js';
import { RemoteError, RpcCodes, RpcError } from './errors.js';
import type { FramedConnection } from './framed.js';
import type { CallContext, HandlerRegistry } from './handlers.js';

/**
 * Calls over one authenticated connection: ids, timeouts, many in flight, cancellation, typed
 * remote errors. Messages after the handshake:
 *   call   {t:'c', i, m, a}        i: call id (unique per direction), m: command name, a: args
 *   result {t:'r', i, r}
 *   error  {t:'e', i, c, s, d?}    c: code, s: message, d: details
 *   cancel {t:'x', i}
 * A message that is not one of these closes the connection (KILN_ERR_RPC_PROTOCOL).
 */

export interface CallOptions {
  /** Milliseconds before the call fails with KILN_ERR_RPC_TIMEOUT. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface ChannelOptions {
  conn: FramedConnection;
  handlers: HandlerRegistry;
  logger: Logger;
  peerVersion: number;
  /** Passed to handlers as ctx.peer; the owner may fill it in later (e.g. after registration). */
  peer?: Record<string, unknown>;
  defaultTimeoutMs?: number;
}

interface Pending {
  command: Command;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const MAX_ID = 0x7fffffff;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class RpcChannel extends EventEmitter<{ close: [KilnError | undefined] }> {
  readonly peer: Record<string, unknown>;
  readonly peerVersion: number;
  private readonly conn: FramedConnection;
  private readonly handlers: HandlerRegistry;
  private readonly logger: Logger;
  private readonly defaultTimeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private readonly serving = new Map<number, AbortController>();
  private nextId = 1;
  private closedWith: KilnError | undefined;
  private isClosed = false;

  constructor(opts: ChannelOptions) {
    super();
    this.conn = opts.conn;
    this.handlers = opts.handlers;
    this.logger = opts.logger;
    this.peerVersion = opts.peerVersion;
    this.peer = opts.peer ?? {};
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 30_000;
    this.conn.on('close', (info) => this.onClose(info.error));
    if (this.conn.closed) this.onClose(undefined);
    else this.conn.setHandler((m) => this.onMessage(m));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  call<C extends Command>(command: C, args: ArgsOf<C>, opts: CallOptions = {}): Promise<ResultOf<C>> {
    if (this.isClosed) {
      return Promise.reject(
        new RpcError(RpcCodes.closed, `RPC connection closed; ${command.name} not sent`, {
          cause: this.closedWith?.code,
        }),
      );
    }
    if (command.since > this.peerVersion) {
      return Promise.reject(
        new RpcError(
          RpcCodes.version,
          `${command.name} needs RPC version ${command.since}; the peer speaks ${this.peerVersion}`,
        ),
      );
    }
    if (opts.signal?.aborted) {
      return Promise.reject(new RpcError(RpcCodes.cancelled, `${command.name} cancelled before it was sent`));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    return new Promise<ResultOf<C>>((resolve, reject) => {
      const p: Pending = {
        command,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: undefined,
        signal: opts.signal,
        onAbort: undefined,
      };
      const timeout = opts.timeout ?? this.defaultTimeoutMs;
      if (timeout > 0 && Number.isFinite(timeout)) {
        p.timer = setTimeout(() => {
          this.settle(
            id,
            new RpcError(RpcCodes.timeout, `${command.name} got no answer within ${timeout} ms`),
          );
          this.conn.send({ t: 'x', i: id });
        }, timeout);
      }
      if (opts.signal) {
        p.onAbort = () => {
          this.settle(id, new RpcError(RpcCodes.cancelled, `${command.name} cancelled`));
          this.conn.send({ t: 'x', i: id });
        };
        opts.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(id, p);
      try {
        this.conn.send({ t: 'c', i: id, m: command.name, a: args });
      } catch (err) {
        this.settle(id, err instanceof KilnError ? err : new RpcError(RpcCodes.badArgs, describeError(err)));
      }
    });
  }

  close(): void {
    this.conn.close();
  }

  /** Abort the connection at once (tests and shutdown). */
  destroy(): void {
    this.conn.destroy();
  }

  private settle(id: number, error: unknown, value?: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (error) {
      p.reject(error);
      return;
    }
    const parsed = p.command.result.safeParse(value);
    if (parsed.success) p.resolve(parsed.data);
    else
      p.reject(
        new RpcError(RpcCodes.badResult, `${p.command.name}: the peer's answer does not match the schema`, {
          issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
        }),
      );
  }

  private onMessage(msg: unknown): void {
    if (isRecord(msg) && msg.t === 'fail') {
      const code = typeof msg.code === 'string' ? msg.code.slice(0, 100) : RpcCodes.protocol;
      const text = typeof msg.message === 'string' ? msg.message.slice(0, 500) : 'peer closed the connection';
      this.conn.close(new RemoteError(code, `peer closed the connection: ${text}`));
      return;
    }
    if (!isRecord(msg) || typeof msg.i !== 'number' || !Number.isInteger(msg.i)) {
      this.protocolError('an RPC message without a call id');
      return;
    }
    const id = msg.i;
    switch (msg.t) {
      case 'r':
        this.settle(id, undefined, msg.r);
        return;
      case 'e': {
        const code = typeof msg.c === 'string' ? msg.c.slice(0, 100) : RpcCodes.internal;
        const text = typeof msg.s === 'string' ? msg.s.slice(0, 2000) : 'remote error';
        const details = isRecord(msg.d) ? msg.d : undefined;
        this.settle(id, new RemoteError(code, text, details));
        return;
      }
      case 'c':
        this.serve(id, msg.m, msg.a);
        return;
      case 'x':
        this.serving.get(id)?.abort();
        this.serving.delete(id);
        return;
      default:
        this.protocolError(`an unknown RPC message type ${JSON.stringify(msg.t)?.slice(0, 20)}`);
    }
  }

  private protocolError(what: string): void {
    this.logger.debug({ peer: this.peer }, `RPC peer sent ${what}; closing`);
    this.conn.fail(new RpcError(RpcCodes.protocol, `received ${what}`));
  }

  private answerError(id: number, code: string, message: string, details?: Record<string, unknown>): void {
    const m: Record<string, unknown> = { t: 'e', i: id, c: code, s: message };
    if (details) m.d = details;
    this.conn.send(m);
  }

  private serve(id: number, name: unknown, rawArgs: unknown): void {
    if (typeof name !== 'string') {
      this.answerError(id, RpcCodes.protocol, 'call without a command name');
      return;
    }
    const entry = this.handlers.get(name);
    if (!entry) {
      this.answerError(
        id,
        RpcCodes.unknownCommand,
        `unknown RPC command ${JSON.stringify(name.slice(0, 100))} (this ${this.handlers.side} serves ${this.handlers.names().join(', ')})`,
      );
      return;
    }
    const parsed = entry.command.args.safeParse(rawArgs);
    if (!parsed.success) {
      this.answerError(id, RpcCodes.badArgs, `${name}: arguments do not match the schema`, {
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
      });
      return;
    }
    const ac = new AbortController();
    this.serving.set(id, ac);
    const ctx: CallContext = { signal: ac.signal, peer: this.peer, logger: this.logger };
    let out: unknown;
    try {
      out = entry.handler(parsed.data, ctx);
    } catch (err) {
      this.handlerFailed(id, name, err);
      return;
    }
    if (out instanceof Promise) {
      out.then(
        (v) => this.answer(id, v),
        (err) => this.handlerFailed(id, name, err),
      );
    } else this.answer(id, out);
  }

  private answer(id: number, value: unknown): void {
    const ac = this.serving.get(id);
    this.serving.delete(id);
    if (!ac || ac.signal.aborted) return;
    try {
      this.conn.send({ t: 'r', i: id, r: value });
    } catch (err) {
      this.answerError(id, RpcCodes.badResult, describeError(err));
    }
  }

  private handlerFailed(id: number, name: string, err: unknown): void {
    const ac = this.serving.get(id);
    this.serving.delete(id);
    if (ac?.signal.aborted) return;
    if (err instanceof KilnError) {
      this.answerError(id, err.code, err.message, err.details);
      return;
    }
    this.logger.error({ err, command: name }, 'RPC handler failed');
    this.answerError(id, RpcCodes.internal, `${name} failed on the ${this.handlers.side}; see its log`);
  }

  private onClose(error: KilnError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closedWith = error;
    for (const ac of this.serving.values()) ac.abort();
    this.serving.clear();
    for (const id of [...this.pending.keys()]) {
      this.settle(
        id,
        new RpcError(
          RpcCodes.closed,
          `RPC connection closed before the answer${error ? ` (${error.message})` : ''}`,
        ),
      );
    }
    this.emit('close', error);
  }
}
