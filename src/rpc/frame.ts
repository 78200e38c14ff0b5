import { Packr, Unpackr } from 'msgpackr';
import { DecodeError, describeError } from '../lib/errors.js';

/**
 * The RPC wire format: each message is one frame, a 4-byte big-endian payload length followed by
 * that many bytes of plain msgpack. Pure: no sockets, no clock, no logging.
 *
 *    0                   1                   2                   3
 *   +-------+-------+-------+-------+---------------------------------+
 *   |   payload length (u32 BE)     |  msgpack payload (length bytes) |
 *   +-------+-------+-------+-------+---------------------------------+
 */

export const FRAME_HEADER_BYTES = 4;
/** Default largest payload accepted; a GetBootConfig answer is well under 4 KiB. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

// Plain msgpack only: records/structured clones would make decoding depend on earlier frames.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export class FrameTooLargeError extends DecodeError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`RPC frame of ${size} bytes exceeds the limit of ${limit} bytes`, { size, limit });
    (this as { code: string }).code = 'KILN_ERR_RPC_FRAME_TOO_LARGE';
  }
}

/** One frame: header + msgpack of `message`. Throws FrameTooLargeError past `maxBytes`. */
export function encodeFrame(message: unknown, maxBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  const payload = packr.pack(message);
  if (payload.length > maxBytes) throw new FrameTooLargeError(payload.length, maxBytes);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** Decode one msgpack payload (no header). Any malformation is a DecodeError. */
export function decodePayload(payload: Uint8Array): unknown {
  if (payload.length === 0) throw new DecodeError('empty RPC frame');
  let value: unknown;
  try {
    // unpackMultiple would accept trailing values; a frame holds exactly one.
    const values: unknown[] = [];
    unpackr.unpackMultiple(payload, (v: unknown) => {
      values.push(v);
      return values.length < 2;
    });
    if (values.length !== 1) throw new DecodeError('RPC frame holds more than one msgpack value');
    value = values[0];
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(`RPC frame is not valid msgpack: ${describeError(err)}`);
  }
  return value;
}

/**
 * Splits a byte stream into decoded messages. Feed it chunks as they arrive; it returns every
 * complete message. A length over the limit throws before any of the payload is buffered, so a
 * peer cannot make us allocate a large frame.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes = DEFAULT_MAX_FRAME_BYTES) {}

  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): unknown[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    const out: unknown[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) return out;
      const head = this.peekHeader();
      const size = head.readUInt32BE(0);
      if (size > this.maxBytes) throw new FrameTooLargeError(size, this.maxBytes);
      if (this.buffered < FRAME_HEADER_BYTES + size) return out;
      const frame = this.take(FRAME_HEADER_BYTES + size);
      out.push(decodePayload(frame.subarray(FRAME_HEADER_BYTES)));
    }
  }

  private peekHeader(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

/** Decode a whole buffer of concatenated frames (for tests and fuzzing). */
export function decodeFrames(buf: Uint8Array, maxBytes = DEFAULT_MAX_FRAME_BYTES): unknown[] {
  const d = new FrameDecoder(maxBytes);
  const out = d.push(buf);
  if (d.pendingBytes !== 0) throw new DecodeError(`truncated RPC frame: ${d.pendingBytes} bytes left over`);
  return out;
}
