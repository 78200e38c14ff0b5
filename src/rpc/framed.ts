import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { DecodeError, describeError, KilnError } from '../lib/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from './frame.js';

export interface FramedCloseInfo {
  /** Why we closed it, when we did (bad frame, handshake failure, explicit close). */
  error?: KilnError | undefined;
}

/**
 * A socket carrying frames: decodes incoming bytes into messages for one handler at a time (the
 * handshake, then the channel) and batches outgoing frames written in the same tick into one
 * write. A malformed or oversized frame closes this connection only, after telling the peer why.
 */
export class FramedConnection extends EventEmitter<{ close: [FramedCloseInfo] }> {
  private readonly decoder: FrameDecoder;
  private handler: ((msg: unknown) => void) | undefined;
  private backlog: unknown[] = [];
  private corked = false;
  private closedFlag = false;
  private closeInfo: FramedCloseInfo = {};

  constructor(
    readonly socket: Duplex,
    readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
  ) {
    super();
    this.decoder = new FrameDecoder(maxFrameBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {
      // 'close' follows; the reason we care about (if any) is already in closeInfo.
    });
    socket.on('close', () => this.finish());
    socket.on('end', () => socket.end());
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Route decoded messages to `fn`; messages that arrived before a handler was set are replayed. */
  setHandler(fn: (msg: unknown) => void): void {
    this.handler = fn;
    const queued = this.backlog;
    this.backlog = [];
    for (const m of queued) {
      if (this.closedFlag || this.handler !== fn) return;
      fn(m);
    }
  }

  /** Stop delivering messages (they queue until the next setHandler). */
  pause(): void {
    this.handler = undefined;
  }

  send(message: unknown): void {
    if (this.closedFlag) return;
    const frame = encodeFrame(message, this.maxFrameBytes);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  /** Tell the peer why (best effort), then close. */
  fail(error: KilnError): void {
    if (this.closedFlag) return;
    this.closeInfo = { error };
    try {
      this.send({ t: 'fail', code: error.code, message: error.message });
    } catch {
      // The reason itself could not be encoded; close anyway.
    }
    this.socket.end();
    // A peer that never reads must not keep the socket open.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish();
  }

  close(error?: KilnError): void {
    if (this.closedFlag) return;
    this.closeInfo = { error };
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish();
  }

  destroy(error?: KilnError): void {
    if (!this.closedFlag) this.closeInfo = { error };
    this.socket.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.handler = undefined;
    this.backlog = [];
    this.emit('close', this.closeInfo);
  }

  private onData(chunk: Buffer): void {
    if (this.closedFlag) return;
    let messages: unknown[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err instanceof KilnError ? err : new DecodeError(describeError(err)));
      return;
    }
    for (const m of messages) {
      if (this.closedFlag) return;
      if (this.handler) this.handler(m);
      else this.backlog.push(m);
    }
  }
}
