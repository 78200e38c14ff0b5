/**
 * One read transfer on its own socket (its own TID, RFC 1350 §4): OACK if options were agreed,
 * then windows of DATA blocks (RFC 7440; a window of 1 is RFC 1350's lockstep), retransmission on
 * timeout, and an end that always closes the socket and the source exactly once.
 */
import type { Socket } from 'node:dgram';
import { DecodeError } from '../lib/errors.js';
import { ackedBlock, blockCount, wireBlock } from '../protocols/tftp/blocks.js';
import {
  decodePacket,
  encodeData,
  encodeError,
  encodePacket,
  Opcode,
  type TftpOption,
} from '../protocols/tftp/packet.js';
import type { TransferSource } from './tftp-source.js';

export type TransferEnd =
  | { kind: 'complete'; bytes: number }
  /** The client sent ERROR. `afterOack`: it only wanted the OACK (OVMF reads tsize, then sends error 8). */
  | { kind: 'client-error'; code: number; message: string; afterOack: boolean }
  | { kind: 'timeout'; block: number }
  | { kind: 'socket-error'; error: Error }
  | { kind: 'aborted'; reason: string };

export interface TransferSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /**
   * Double the interval after each unanswered retransmission (up to MAX_BACKOFF_MS). Off when the
   * client set the interval itself with the RFC 2349 timeout option.
   */
  backoff: boolean;
  retries: number;
  /** Options to acknowledge first; empty: start with DATA 1. */
  oack: TftpOption[];
}

/** Read at least this much per file read, so a lockstep transfer does not do one read per block. */
const MIN_CHUNK_BYTES = 64 * 1024;

/**
 * Some clients answer a repeated block with one extra ACK and then ignore repeats, re-ACKing only
 * when their own timer fires (atftp does). If that ACK is lost and we repeat faster than their
 * timer, each repeat restarts it and neither side moves. Backing off lets the client's timer win.
 */
const MAX_BACKOFF_MS = 4000;

export class ReadTransfer {
  private state: 'oack' | 'data' | 'done' = 'data';
  /** Last block the client acknowledged (absolute; 0 before any, which is also the OACK's). */
  private base = 0;
  /** Highest block sent so far (absolute). */
  private sent = 0;
  private readonly last: number;
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private interval = 0;
  private chunk: Uint8Array = new Uint8Array(0);
  /** Byte offset of `chunk` in the source. */
  private chunkStart = 0;
  private reading = false;
  private oackPacket: Buffer | undefined;
  /** Duplicate ACKs seen: counted, never answered (Sorcerer's Apprentice). */
  duplicateAcks = 0;
  retransmits = 0;

  constructor(
    private readonly socket: Socket,
    private readonly source: TransferSource,
    private readonly settings: TransferSettings,
    private readonly onEnd: (end: TransferEnd) => void,
    private readonly onMalformed: (err: DecodeError) => void,
  ) {
    this.last = blockCount(source.size, settings.blksize);
    if (source.whole) this.chunk = source.whole;
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('error', (error) => {
      // The last ACK was lost and the client, having its file, closed its port: the kernel reports
      // the ICMP port-unreachable for our retransmission. RFC 1350 §6 leaves that loss to the
      // client's dallying; for us the file went out.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' && this.state === 'data' && this.sent === this.last) {
        this.end({ kind: 'complete', bytes: this.source.size });
      } else {
        this.end({ kind: 'socket-error', error });
      }
    });
  }

  get done(): boolean {
    return this.state === 'done';
  }

  start(): void {
    if (this.settings.oack.length > 0) {
      this.state = 'oack';
      this.oackPacket = encodePacket({ op: Opcode.OACK, options: this.settings.oack });
      this.sendOack();
    } else {
      this.sendWindow();
    }
  }

  /** Ends the transfer from our side (server closing, superseded request), telling the client why. */
  abort(reason: string, tell = true): void {
    if (this.state === 'done') return;
    if (tell) this.send(encodeError(0, reason));
    this.end({ kind: 'aborted', reason });
  }

  private onMessage(msg: Buffer): void {
    if (this.state === 'done') return;
    let p: ReturnType<typeof decodePacket>;
    try {
      p = decodePacket(msg);
    } catch (err) {
      if (err instanceof DecodeError) this.onMalformed(err);
      else throw err;
      return;
    }
    if (p.op === Opcode.ERROR) {
      this.end({ kind: 'client-error', code: p.code, message: p.message, afterOack: this.state === 'oack' });
      return;
    }
    // Anything else from our client on this port (a stray RRQ, DATA) is not a read's business.
    if (p.op !== Opcode.ACK) return;
    if (this.state === 'oack') {
      // RFC 2347 §2: the client confirms the OACK with ACK 0, then DATA 1 follows.
      if (p.block !== 0) return;
      this.state = 'data';
      this.attempts = 0;
      this.sendWindow();
      return;
    }
    const acked = ackedBlock(p.block, this.base, this.sent);
    if (acked === undefined) return;
    if (acked === this.base) {
      // RFC 1350 §6 errata (Sorcerer's Apprentice): answering a duplicate ACK by sending again
      // doubles every later block. Only the timer retransmits.
      this.duplicateAcks++;
      return;
    }
    this.base = acked;
    this.attempts = 0;
    if (acked === this.last) {
      this.end({ kind: 'complete', bytes: this.source.size });
      return;
    }
    // A full window ACK moves on; a partial one (RFC 7440 §4: the client saw a gap after `acked`)
    // rolls back and sends the next window from the block after it. Either way: from base + 1.
    this.sendWindow();
  }

  private sendOack(): void {
    if (this.oackPacket) this.send(this.oackPacket);
    this.arm();
  }

  /** Send blocks base+1 .. base+windowsize (fewer at the end), reading the file first if needed. */
  private sendWindow(): void {
    if (this.state !== 'data' || this.reading) return;
    const { blksize, windowsize } = this.settings;
    const from = this.base + 1;
    const to = Math.min(this.base + windowsize, this.last);
    const startByte = (from - 1) * blksize;
    const endByte = Math.min(to * blksize, this.source.size);
    if (startByte < this.chunkStart || endByte > this.chunkStart + this.chunk.length) {
      this.refill(startByte, Math.max(endByte - startByte, MIN_CHUNK_BYTES));
      return;
    }
    for (let b = from; b <= to; b++) {
      const s = (b - 1) * blksize - this.chunkStart;
      const e = Math.min(b * blksize, this.source.size) - this.chunkStart;
      this.send(encodeData(wireBlock(b), this.chunk.subarray(s, e)));
    }
    if (to > this.sent) this.sent = to;
    this.arm();
  }

  private refill(offset: number, length: number): void {
    this.reading = true;
    this.source.read(offset, length).then(
      (buf) => {
        this.reading = false;
        if (this.state === 'done') return;
        const wanted = Math.min(offset + length, this.source.size) - offset;
        if (buf.length < wanted) {
          // The file shrank since we announced its size; the client cannot get what tsize said.
          this.abort('file changed during transfer');
          return;
        }
        this.chunk = buf;
        this.chunkStart = offset;
        this.sendWindow();
      },
      (err: unknown) => {
        this.reading = false;
        if (this.state === 'done') return;
        this.send(encodeError(0, 'read error'));
        this.end({ kind: 'socket-error', error: err instanceof Error ? err : new Error(String(err)) });
      },
    );
  }

  private arm(): void {
    const { timeoutMs, backoff } = this.settings;
    const interval =
      backoff && this.attempts > 0
        ? Math.min(timeoutMs * 2 ** this.attempts, Math.max(timeoutMs, MAX_BACKOFF_MS))
        : timeoutMs;
    if (this.timer && interval === this.interval) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.interval = interval;
    this.timer = setTimeout(() => this.onTimeout(), interval);
  }

  private onTimeout(): void {
    if (this.state === 'done') return;
    if (this.reading) {
      this.arm();
      return;
    }
    this.attempts++;
    if (this.attempts > this.settings.retries) {
      this.send(encodeError(0, 'timed out'));
      this.end({ kind: 'timeout', block: this.base });
      return;
    }
    this.retransmits++;
    // Go back to the first unacknowledged block (RFC 7440 §4) or repeat the OACK.
    if (this.state === 'oack') this.sendOack();
    else this.sendWindow();
  }

  private send(packet: Buffer): void {
    try {
      this.socket.send(packet);
    } catch (err) {
      // send() throws synchronously only once the socket is closed; the end is already under way.
      if (this.state !== 'done') this.end({ kind: 'socket-error', error: err as Error });
    }
  }

  private end(end: TransferEnd): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.chunk = new Uint8Array(0);
    this.socket.removeAllListeners('message');
    // A late 'error' after close must not reach the process as an unhandled event.
    this.socket.on('error', () => {});
    try {
      this.socket.close();
    } catch {
      // already closed
    }
    this.source.close().catch(() => {});
    this.onEnd(end);
  }
}
