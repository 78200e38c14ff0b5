import { type ChildProcess, fork } from 'node:child_process';
import { describeError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * A fixed set of forked worker processes, each in a numbered slot (1-based): the mechanism under
 * the region supervisor and the rack worker pool, without their roles. Each child gets a start
 * message right after the fork and reports ready in its own words (the owner's `onMessage` calls
 * `markReady`); a child that dies is forked again into its slot after a backoff that grows while it
 * keeps dying quickly; `stop` asks every child to drain and kills the ones that take too long.
 */

export interface ChildPoolOptions {
  /** What the children are called in logs: "region worker", "rack worker". */
  name: string;
  logger: Logger;
  /** Script each child runs; the slot number is appended to `args`. */
  script: string;
  args: readonly string[];
  /** Node's own options for the children (the parent's, so a TypeScript loader carries over). */
  execArgv: readonly string[];
  /** The first message every new child of a slot gets (asked again at each restart). */
  startMessage(slot: ChildSlot): unknown;
  /** Asks a child to drain and exit. */
  stopMessage: unknown;
  /** Every message a child sends. */
  onMessage(slot: ChildSlot, child: ChildProcess, message: unknown): void;
  /** A child exited; called before a restart is scheduled (or not, when stopping). */
  onExit?(slot: ChildSlot, child: ChildProcess): void;
  /** `start` goes on without a child that has not reported by then; by default it waits. */
  readyTimeoutMs?: number | undefined;
  /** Time children get to drain on stop before they are killed. Default 15 s. */
  stopTimeoutMs?: number | undefined;
  /** Backoff before a restart, by quick crashes in a row (1 for the first). */
  restartDelayMs?: (crashes: number) => number;
  /** A child that ran this long before dying is not crash-looping: its backoff starts over. */
  stableMs?: number;
}

export interface ChildSlot {
  readonly index: number;
  /** The current child; null between a death and its restart. */
  readonly child: ChildProcess | null;
  /** The current child has reported ready. */
  readonly ready: boolean;
  /** How often this slot's child died and was forked again. */
  readonly restarts: number;
}

interface Slot extends ChildSlot {
  child: ChildProcess | null;
  ready: boolean;
  restarts: number;
  /** Consecutive quick crashes, for the backoff. */
  crashes: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** The pending `start` of this slot, told whether the first child became ready. */
  started: ((ok: boolean) => void) | undefined;
}

/** Backoff after a crash: 100 ms, doubling per quick crash in a row, at most 10 s. */
export function restartDelayMs(crashes: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, crashes - 1));
}

const STABLE_MS = 30_000;

export class ChildPool {
  private readonly list: Slot[] = [];
  private stopping = false;

  constructor(private readonly opts: ChildPoolOptions) {}

  /** Slots in the order they were started. */
  get slots(): readonly ChildSlot[] {
    return this.list;
  }

  /**
   * Opens slot `index` and forks its child; true once the child reports ready, false if it died
   * first or did not report within `readyTimeoutMs` (it keeps its slot and may still report).
   */
  start(index: number): Promise<boolean> {
    const slot: Slot = {
      index,
      child: null,
      ready: false,
      restarts: 0,
      crashes: 0,
      startedAt: 0,
      restartTimer: undefined,
      started: undefined,
    };
    this.list.push(slot);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      slot.started = (ok) => {
        clearTimeout(timer);
        slot.started = undefined;
        resolve(ok);
      };
      if (this.opts.readyTimeoutMs !== undefined) {
        // A child that neither reports nor dies must not hold its owner's start-up forever.
        timer = setTimeout(() => {
          this.opts.logger.error(
            { worker: slot.index, pid: slot.child?.pid },
            `${this.opts.name} not ready in time; going on without it`,
          );
          slot.started?.(false);
        }, this.opts.readyTimeoutMs);
      }
      this.fork(slot);
    });
  }

  /** The owner saw a child's ready report. */
  markReady(slot: ChildSlot): void {
    const s = slot as Slot;
    s.ready = true;
    s.started?.(true);
  }

  /** Sends if the child is still connected; a child that went away is the exit handler's business. */
  send(child: ChildProcess, message: unknown): void {
    if (child.connected) child.send(message as object, undefined, undefined, () => {});
  }

  /** Children with a live IPC channel. */
  live(): ChildProcess[] {
    return this.list.filter((s) => s.child?.connected).map((s) => s.child!);
  }

  /** Live children's pids by slot number. */
  pids(): Map<number, number> {
    const m = new Map<number, number>();
    for (const s of this.list) if (s.child?.pid !== undefined) m.set(s.index, s.child.pid);
    return m;
  }

  /** Asks every child to drain; kills those still running after `stopTimeoutMs`. No restarts after. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.list.map((s) => {
        if (s.restartTimer) clearTimeout(s.restartTimer);
        const child = s.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          // The child may be exiting already (a terminal's Ctrl-C reaches it too).
          const fallback = () => child.kill('SIGTERM');
          if (child.connected) child.send(this.opts.stopMessage as object, (err) => err && fallback());
          else fallback();
          const t = setTimeout(() => child.kill('SIGKILL'), this.opts.stopTimeoutMs ?? 15_000);
          t.unref();
        });
      }),
    );
  }

  private fork(slot: Slot): void {
    const { opts } = this;
    slot.startedAt = Date.now();
    slot.ready = false;
    const child = fork(opts.script, [...opts.args, String(slot.index)], {
      execArgv: [...opts.execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    slot.child = child;
    child.on('message', (m: unknown) => opts.onMessage(slot, child, m));
    child.on('error', (err) =>
      opts.logger.error({ err: describeError(err), worker: slot.index }, `${opts.name} process error`),
    );
    child.once('exit', (code, signal) => {
      slot.child = null;
      slot.ready = false;
      opts.onExit?.(slot, child);
      slot.started?.(false);
      if (this.stopping) return;
      slot.crashes = Date.now() - slot.startedAt > (opts.stableMs ?? STABLE_MS) ? 1 : slot.crashes + 1;
      slot.restarts++;
      const delay = (opts.restartDelayMs ?? restartDelayMs)(slot.crashes);
      opts.logger.error(
        { worker: slot.index, pid: child.pid, code, signal, restart_in_ms: delay },
        `${opts.name} died; restarting`,
      );
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined;
        if (!this.stopping) this.fork(slot);
      }, delay);
    });
    this.send(child, opts.startMessage(slot));
  }
}
