/**
 * The TFTP server: read requests only. It listens on one port (69 in production), asks the
 * BootResolver what a requested name is, and runs each transfer from its own ephemeral port
 * (RFC 1350 §4). It never decides what a machine boots.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { DecodeError, describeError, isKilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { DEFAULT_LIMITS, type NegotiationLimits, negotiate } from '../protocols/tftp/options.js';
import {
  decodePacket,
  encodeError,
  Opcode,
  type RequestPacket,
  TftpErrorCode,
} from '../protocols/tftp/packet.js';
import type { BootResolver, BootSource } from './boot-source.js';
import { PATH_REFUSED } from './tftp-root-resolver.js';
import { ContentSource, FileOpener, netasciiSource, type TransferSource } from './tftp-source.js';
import { ReadTransfer, type TransferEnd } from './tftp-transfer.js';

export interface TftpServerOptions {
  /** Address to bind (also the local address transfers bind, so replies leave from it). */
  host: string;
  port: number;
  /** An already-bound UDP socket (SO_REUSEPORT from the native addon, rack workers); host/port then only label logs. */
  fd?: number;
  logger: Logger;
  resolver: BootResolver;
  /** Retransmission timeout when the client sets none (config rack.tftp.timeout_ms). */
  timeoutMs: number;
  /** Retransmissions without progress before a transfer is abandoned (config rack.tftp.retries). */
  retries: number;
  /** Per-transfer caps on blksize, windowsize and bytes in flight; see NegotiationLimits. */
  limits?: Partial<NegotiationLimits>;
  /** Transfers at once; past it requests get "server busy". Each holds a socket and one chunk. */
  maxTransfers?: number;
  /** Largest file served in netascii mode (it is encoded whole in memory). */
  maxNetasciiBytes?: number;
}

export interface TftpStats {
  active: number;
  started: number;
  completed: number;
  /** Ended by the client's ERROR, including OVMF's tsize probe. */
  clientEnded: number;
  timedOut: number;
  failed: number;
  bytesSent: number;
  retransmits: number;
  duplicateAcks: number;
}

interface Active {
  transfer: ReadTransfer | undefined;
  request: Buffer;
}

export class TftpServer {
  private socket: Socket | undefined;
  private readonly active = new Map<string, Active>();
  private readonly limits: NegotiationLimits;
  private readonly maxTransfers: number;
  private readonly maxNetasciiBytes: number;
  private readonly log: Logger;
  private closing = false;
  private readonly files = new FileOpener();
  private readonly counters: Omit<TftpStats, 'active'> = {
    started: 0,
    completed: 0,
    clientEnded: 0,
    timedOut: 0,
    failed: 0,
    bytesSent: 0,
    retransmits: 0,
    duplicateAcks: 0,
  };

  constructor(private readonly options: TftpServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxTransfers = options.maxTransfers ?? 1000;
    this.maxNetasciiBytes = options.maxNetasciiBytes ?? 4 << 20;
    this.log = options.logger.child({ component: 'tftp' });
  }

  /** Bind and start answering. Rejects with the bind error (see lib/listen-error.ts to explain it). */
  async listen(): Promise<{ address: string; port: number }> {
    const socket = createSocket(isIPv6(this.options.host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      const bound = () => {
        socket.off('error', reject);
        resolve();
      };
      if (this.options.fd !== undefined) socket.bind({ fd: this.options.fd }, bound);
      else socket.bind({ address: this.options.host, port: this.options.port, exclusive: true }, bound);
    });
    try {
      // A boot storm sends hundreds of requests at once; the default buffer (~208 KiB) drops some,
      // and each drop costs that client a retransmission timeout. The kernel caps this at
      // net.core.rmem_max without complaint.
      socket.setRecvBufferSize(4 << 20);
    } catch {
      // not fatal: requests dropped here are retried by clients
    }
    socket.on('error', (err) => this.log.error({ err: describeError(err) }, 'tftp socket error'));
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo.address, rinfo.port));
    this.socket = socket;
    const a = socket.address();
    this.log.info({ address: a.address, port: a.port }, 'tftp listening');
    return { address: a.address, port: a.port };
  }

  address(): { address: string; port: number } {
    if (!this.socket) throw new Error('tftp server not listening');
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  stats(): TftpStats {
    return { active: this.active.size, ...this.counters };
  }

  /** Stop listening and end every transfer (clients get ERROR 0 "server shutting down"). */
  async close(): Promise<void> {
    this.closing = true;
    for (const a of this.active.values()) a.transfer?.abort('server shutting down');
    this.active.clear();
    this.files.clear();
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private onRequest(msg: Buffer, address: string, port: number): void {
    let p: ReturnType<typeof decodePacket>;
    try {
      p = decodePacket(msg);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.log.debug({ client: `${address}:${port}`, err: err.message }, 'tftp malformed packet dropped');
      return;
    }
    if (p.op === Opcode.WRQ) {
      this.log.info({ client: `${address}:${port}`, file: p.filename }, 'tftp write request refused');
      this.replyFromMain(TftpErrorCode.ACCESS_VIOLATION, 'write requests are not accepted', address, port);
      return;
    }
    if (p.op !== Opcode.RRQ) {
      // DATA/ACK/ERROR belong on a transfer's port; here they are stray (a transfer long gone).
      this.log.debug(
        { client: `${address}:${port}`, op: p.op },
        'tftp non-request on the server port dropped',
      );
      return;
    }
    const key = `${address}:${port}`;
    const existing = this.active.get(key);
    if (existing) {
      // A client repeats its RRQ when our first answer is slow or lost; the running transfer
      // retransmits by itself, and a second one would only collide with it (the client takes the
      // first TID and sends error 5 to the other). A different request from the same port means
      // the client gave up on the old one.
      if (existing.request.equals(msg)) return;
      existing.transfer?.abort('superseded by a new request', false);
      this.active.delete(key);
    }
    if (this.active.size >= this.maxTransfers) {
      this.log.warn({ client: key, active: this.active.size }, 'tftp request refused: too many transfers');
      this.replyFromMain(TftpErrorCode.NOT_DEFINED, 'server busy, try again', address, port);
      return;
    }
    const entry: Active = { transfer: undefined, request: Buffer.from(msg) };
    this.active.set(key, entry);
    this.counters.started++;
    this.startTransfer(p, address, port, entry).catch((err: unknown) => {
      this.log.error(
        { client: key, file: p.filename, err: describeError(err) },
        'tftp transfer failed to start',
      );
      this.forget(key, entry);
    });
  }

  private replyFromMain(code: number, message: string, address: string, port: number): void {
    this.socket?.send(encodeError(code, message), port, address);
  }

  private forget(key: string, entry: Active): void {
    if (this.active.get(key) === entry) this.active.delete(key);
  }

  private async startTransfer(
    req: RequestPacket,
    address: string,
    port: number,
    entry: Active,
  ): Promise<void> {
    const key = `${address}:${port}`;
    const log = withBindings(this.log, { client: key, file: req.filename });
    const socket = await this.openTransferSocket(address, port);
    const fail = (code: number, message: string) => {
      try {
        socket.send(encodeError(code, message), () => socket.close());
      } catch {
        socket.close();
      }
      this.counters.failed++;
      this.forget(key, entry);
    };
    if (this.closing || this.active.get(key) !== entry) {
      socket.close();
      return;
    }

    const mode = req.mode.toLowerCase();
    if (mode !== 'octet' && mode !== 'netascii') {
      // RFC 1350 §1: "mail" delivers to a user and only makes sense for writes.
      log.debug({ mode: req.mode }, 'tftp unsupported mode');
      fail(TftpErrorCode.ILLEGAL_OPERATION, `mode ${req.mode} not supported`);
      return;
    }

    let found: BootSource | null;
    try {
      found = await this.options.resolver.resolve({
        path: req.filename,
        protocol: 'tftp',
        remoteAddress: address,
        remotePort: port,
        localAddress: socket.address().address,
      });
    } catch (err) {
      if (isKilnError(err, PATH_REFUSED)) {
        log.warn('tftp request refused: path outside the served root');
        fail(TftpErrorCode.ACCESS_VIOLATION, 'access violation');
      } else {
        log.error({ err: describeError(err) }, 'tftp boot resolver failed');
        fail(TftpErrorCode.NOT_DEFINED, 'internal error');
      }
      return;
    }
    if (!found) {
      log.info('tftp file not found');
      fail(TftpErrorCode.FILE_NOT_FOUND, 'file not found');
      return;
    }

    let source: TransferSource;
    try {
      if (found.kind === 'content') source = new ContentSource(found.body);
      else {
        const opened = await this.files.open(found.path);
        if (opened === 'not-a-file') {
          log.info('tftp request names a directory or special file');
          fail(TftpErrorCode.FILE_NOT_FOUND, 'file not found');
          return;
        }
        source = opened;
      }
      if (mode === 'netascii') {
        const text = await netasciiSource(source, this.maxNetasciiBytes);
        if (!text) {
          log.info('tftp netascii refused: file too large');
          fail(TftpErrorCode.ILLEGAL_OPERATION, 'file too large for netascii, use octet');
          return;
        }
        source = text;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        log.info('tftp file vanished before it could be opened');
        fail(TftpErrorCode.FILE_NOT_FOUND, 'file not found');
      } else if (code === 'EACCES' || code === 'EPERM') {
        log.warn('tftp file not readable by kiln');
        fail(TftpErrorCode.ACCESS_VIOLATION, 'access violation');
      } else {
        log.error({ err: describeError(err) }, 'tftp cannot open file');
        fail(TftpErrorCode.NOT_DEFINED, 'internal error');
      }
      return;
    }
    if (this.closing || this.active.get(key) !== entry) {
      socket.close();
      await source.close();
      return;
    }

    const n = negotiate(req.options, this.limits, source.size);
    const started = Date.now();
    const transfer = new ReadTransfer(
      socket,
      source,
      {
        blksize: n.blksize,
        windowsize: n.windowsize,
        timeoutMs: n.timeoutMs ?? this.options.timeoutMs,
        fixedInterval: n.timeoutMs !== undefined,
        retries: this.options.retries,
        oack: n.oack,
      },
      (end) => {
        this.forget(key, entry);
        this.counters.retransmits += transfer.retransmits;
        this.counters.duplicateAcks += transfer.duplicateAcks;
        this.logEnd(log, end, Date.now() - started);
      },
      (err) => log.debug({ err: err.message }, 'tftp malformed packet on transfer dropped'),
    );
    entry.transfer = transfer;
    log.debug({ blksize: n.blksize, windowsize: n.windowsize, size: source.size }, 'tftp transfer started');
    transfer.start();
  }

  private openTransferSocket(address: string, port: number): Promise<Socket> {
    const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    const host = this.options.host;
    // Bound to the server's address so the client sees replies from where it sent the request;
    // connected, so the kernel drops datagrams from anyone but this client (RFC 1350 §4 TIDs).
    const bindAddress = host === '0.0.0.0' || host === '::' || host === '' ? undefined : host;
    return new Promise<Socket>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ port: 0, ...(bindAddress ? { address: bindAddress } : {}) }, () => {
        socket.connect(port, address, () => {
          socket.off('error', onError);
          resolve(socket);
        });
      });
    });
  }

  private logEnd(log: Logger, end: TransferEnd, ms: number): void {
    switch (end.kind) {
      case 'complete':
        this.counters.completed++;
        this.counters.bytesSent += end.bytes;
        log.info({ bytes: end.bytes, ms }, 'tftp transfer complete');
        return;
      case 'client-error':
        this.counters.clientEnded++;
        // OVMF asks with tsize, reads the OACK and ends with error 8: a size probe, not a failure.
        if (end.afterOack)
          log.debug({ code: end.code, message: end.message }, 'tftp client ended after OACK');
        else log.info({ code: end.code, message: end.message }, 'tftp client aborted the transfer');
        return;
      case 'timeout':
        this.counters.timedOut++;
        log.info({ block: end.block, ms }, 'tftp transfer abandoned: client stopped answering');
        return;
      case 'socket-error':
        this.counters.failed++;
        log.info({ err: describeError(end.error) }, 'tftp transfer ended by a socket error');
        return;
      case 'aborted':
        this.counters.failed++;
        log.debug({ reason: end.reason }, 'tftp transfer aborted');
        return;
    }
  }
}

/**
 * A per-transfer logger that puts `bindings` on each line it writes. Not a pino child: creating a
 * child serializes and redacts its bindings up front, which cost more than a small transfer's
 * packets when hundreds start at once, while most transfers write one line or none.
 */
function withBindings(log: Logger, bindings: Record<string, unknown>): Logger {
  const level =
    (name: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal') =>
    (objOrMsg: object | string, msg?: string) => {
      if (typeof objOrMsg === 'string') log[name](bindings, objOrMsg);
      else log[name]({ ...bindings, ...objOrMsg }, msg);
    };
  return {
    trace: level('trace'),
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
    fatal: level('fatal'),
    child: (more) => log.child({ ...bindings, ...more }),
  };
}

/** Create and bind a TFTP server; the rack keeps the object to close it. */
export async function startTftpServer(options: TftpServerOptions): Promise<TftpServer> {
  const server = new TftpServer(options);
  await server.listen();
  return server;
}
