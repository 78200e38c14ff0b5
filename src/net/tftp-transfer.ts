/**
 * One read transfer on its own socket (its own TID, RFC 1350 §4): OACK if options were agreed,
 * then windows of DATA blocks (RFC 7440; a window of 1 is RFC 1350's lockstep), retransmission
 * after a timeout learnt from the transfer's own round trips, and an end that always closes the
 * socket and the source exactly once. Packets come pre-framed (tftp-frames.ts): the per-block
 * path allocates nothing.
 */
import type { Socket } from 'node:dgram';
import { DecodeError } from '../lib/errors.js';
import { ackedBlock } from '../protocols/tftp/blocks.js';
import {
  decodePacket,
  encodeError,
  encodePacket,
  Opcode,
  type TftpOption,
} from '../protocols/tftp/packet.js';
import { RtoEstimator } from '../protocols/tftp/rto.js';
import { TransferFrames } from './tftp-frames.js';
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
  /**
   * The configured retransmission timeout: where a transfer starts before it has measured a round
   * trip, and the most the learnt timeout may grow to. With `fixedInterval`, the interval itself.
   */
  timeoutMs: number;
  /**
   * The client chose the interval with the RFC 2349 timeout option: retransmit exactly every
   * `timeoutMs`, no measuring, no backoff. RFC 2349 §3 gives the value that meaning, and a client
   * that asks for a long interval is saying it may be slow to answer (writing flash, say);
   * repeating sooner would only send it duplicates.
   */
  fixedInterval: boolean;
  /** The least retransmission timeout the measured one may shrink to; see MIN_RTO_MS. */
  minTimeoutMs?: number;
  /**
   * Timeouts without progress before the transfer is abandoned, and no sooner than
   * retries × timeoutMs after the last progress (a small learnt timeout must not make a pause of
   * a few hundred milliseconds fatal).
   */
  retries: number;
  /** Options to acknowledge first; empty: start with DATA 1. */
  oack: TftpOption[];
}

/**
 * Floor of the learnt timeout. A LAN round trip is well under a millisecond; 50 ms leaves room
 * for a client (or this rack) being descheduled for a while without a storm of spurious repeats,
 * and costs a lost packet 50 ms instead of the configured second.
 */
export const MIN_RTO_MS = 50;

/**
 * Some clients answer a repeated block with one extra ACK and then ignore repeats, re-ACKing only
 * when their own timer fires (atftp does). If that ACK is lost and we repeat faster than their
 * timer, each repeat restarts it and neither side moves. Doubling the interval up to here lets the
 * client's timer win.
 */
const MAX_BACKOFF_MS = 4000;

export class ReadTransfer {
  private state: 'oack' | 'data' | 'done' = 'data';
  /** Last block the client acknowledged (absolute; 0 before any, which is also the OACK's). */
  private base = 0;
  /** Highest block sent so far (absolute). */
  private sent = 0;
  private readonly last: number;
  /** Next block of the current window to send, and the window's last block. */
  private cursor = 1;
  private windowEnd = 0;
  /** The current window is not all sent yet: its next block's chunk is being read. */
  private pending = false;
  /** Every block of the current window goes out for the first time (Karn: only then a sample). */
  private fresh = false;
  /** When the current window (or the OACK) finished going out. */
  private sentAt = 0;
  /** Timeouts since the last progress. */
  private attempts = 0;
  private lastProgress: number;
  private timer: NodeJS.Timeout | undefined;
  private interval = 0;
  private readonly frames: TransferFrames;
  private readonly rto: RtoEstimator;
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
    this.frames = new TransferFrames(
      source,
      settings.blksize,
      settings.windowsize,
      () => {
        if (this.pending) this.pump();
      },
      (why) => {
        if (this.state === 'done') return;
        if (why.kind === 'short') {
          // The file shrank since we announced its size; the client cannot get what tsize said.
          this.abort('file changed during transfer');
        } else {
          this.send(encodeError(0, 'read error'));
          this.end({ kind: 'socket-error', error: why.error });
        }
      },
    );
    this.last = this.frames.last;
    const maxMs = settings.timeoutMs;
    this.rto = new RtoEstimator({ minMs: Math.min(settings.minTimeoutMs ?? MIN_RTO_MS, maxMs), maxMs });
    this.lastProgress = performance.now();
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

  /** The retransmission timeout now (ms): learnt and backed off; the configured one until measured. */
  get currentRto(): number {
    return this.settings.fixedInterval ? this.settings.timeoutMs : this.rto.rto;
  }

  start(): void {
    if (this.settings.oack.length > 0) {
      this.state = 'oack';
      this.oackPacket = encodePacket({ op: Opcode.OACK, options: this.settings.oack });
      this.sendOack();
    } else {
      this.startWindow();
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
    // The hot path: one exact ACK per window, read without building a packet object.
    if (msg.length === 4 && msg[0] === 0 && msg[1] === Opcode.ACK) {
      this.onAck((msg[2]! << 8) | msg[3]!);
      return;
    }
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
  }

  private onAck(block: number): void {
    if (this.state === 'oack') {
      // RFC 2347 §2: the client confirms the OACK with ACK 0, then DATA 1 follows.
      if (block !== 0) return;
      if (this.attempts === 0) this.rto.sample(performance.now() - this.sentAt);
      this.state = 'data';
      this.progress();
      this.startWindow();
      return;
    }
    const acked = ackedBlock(block, this.base, this.sent);
    if (acked === undefined) return;
    if (acked === this.base) {
      // RFC 1350 §6 errata (Sorcerer's Apprentice): answering a duplicate ACK by sending again
      // doubles every later block. Only the timer retransmits.
      this.duplicateAcks++;
      return;
    }
    // Karn's rule: a window that was (partly) sent before, or repeated by the timer, says nothing
    // about the round trip: its ACK may answer an earlier copy.
    if (this.fresh && this.attempts === 0 && !this.pending) this.rto.sample(performance.now() - this.sentAt);
    this.base = acked;
    this.progress();
    if (acked === this.last) {
      this.end({ kind: 'complete', bytes: this.source.size });
      return;
    }
    this.frames.release(acked + 1);
    // A full window ACK moves on; a partial one (RFC 7440 §4: the client saw a gap after `acked`)
    // rolls back and sends the next window from the block after it. Either way: from base + 1.
    this.startWindow();
  }

  private progress(): void {
    this.attempts = 0;
    this.lastProgress = performance.now();
  }

  private sendOack(): void {
    if (this.oackPacket) this.send(this.oackPacket);
    this.sentAt = performance.now();
    this.arm();
  }

  /** Send blocks base+1 .. base+windowsize (fewer at the end). */
  private startWindow(): void {
    this.cursor = this.base + 1;
    this.windowEnd = Math.min(this.base + this.settings.windowsize, this.last);
    this.fresh = this.cursor > this.sent;
    this.pump();
  }

  /** Send what is left of the window; a block whose chunk is still being read resumes it later. */
  private pump(): void {
    if (this.state !== 'data') return;
    const end = this.windowEnd;
    while (this.cursor <= end) {
      const packet = this.frames.packet(this.cursor);
      if (packet === undefined) {
        this.pending = true;
        // Keep the timer running: a client that went away is still noticed.
        if (!this.timer) this.arm();
        return;
      }
      this.send(packet);
      if (this.cursor > this.sent) this.sent = this.cursor;
      this.cursor++;
    }
    if (this.pending) {
      // Part of the window waited on a read; its round trip would include the read.
      this.pending = false;
      this.fresh = false;
    }
    if (this.state !== 'data') return;
    this.sentAt = performance.now();
    this.arm();
    this.frames.prefetch(end + 1);
  }

  private arm(): void {
    const { timeoutMs, fixedInterval } = this.settings;
    const interval = fixedInterval ? timeoutMs : this.rto.rto;
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
    if (this.pending) {
      // Waiting on our own disk is not the client's silence.
      this.arm();
      return;
    }
    this.attempts++;
    const { retries, timeoutMs } = this.settings;
    if (this.attempts > retries && performance.now() - this.lastProgress >= retries * timeoutMs) {
      this.send(encodeError(0, 'timed out'));
      this.end({ kind: 'timeout', block: this.base });
      return;
    }
    this.retransmits++;
    if (!this.settings.fixedInterval) this.rto.backoff(Math.max(timeoutMs, MAX_BACKOFF_MS));
    // Go back to the first unacknowledged block (RFC 7440 §4) or repeat the OACK.
    if (this.state === 'oack') this.sendOack();
    else this.startWindow();
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
    this.frames.close();
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
