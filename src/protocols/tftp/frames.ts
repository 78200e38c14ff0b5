/**
 * DATA packets laid out back to back in one buffer, so a transfer sends subarrays and never
 * allocates or copies per packet. Pure layout arithmetic; filling the payloads is the caller's
 * (a file read straight into `payloads()`, or `frameBytes` from memory).
 *
 *   stride = 4 + blksize
 *    2 B      2 B         blksize B           2 B      2 B
 *   ┌──────┬─────────┬──────────────────┬──────┬─────────┬──────────────────┬─ ─ ─
 *   │  3   │ block n │ payload of n     │  3   │ block   │ payload of n+1   │
 *   │ DATA │ mod 2¹⁶ │                  │ DATA │ n+1     │                  │
 *   └──────┴─────────┴──────────────────┴──────┴─────────┴──────────────────┴─ ─ ─
 *
 * The file's last block is short (maybe empty, RFC 1350 §6): its packet is 4 + that many bytes,
 * and the buffer ends there. Blocks are absolute numbers from 1 (see blocks.ts); the header holds
 * the wire number.
 */
import { blockCount, wireBlock } from './blocks.js';
import { MAX_BLKSIZE, Opcode } from './packet.js';

export class FrameLayout {
  readonly stride: number;
  /** Number of the last (short) block. */
  readonly last: number;

  constructor(
    /** Bytes of the whole transfer as they go on the wire. */
    readonly size: number,
    readonly blksize: number,
  ) {
    if (!Number.isInteger(blksize) || blksize < 1 || blksize > MAX_BLKSIZE)
      throw new RangeError(`blksize ${blksize} out of range`);
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size ${size} out of range`);
    this.stride = 4 + blksize;
    this.last = blockCount(size, blksize);
  }

  /** File offset of block `b`'s payload. */
  offsetOf(b: number): number {
    return (b - 1) * this.blksize;
  }

  /** Payload bytes of block `b` (blksize, except the last). */
  payloadLength(b: number): number {
    return b < this.last ? this.blksize : this.size - (this.last - 1) * this.blksize;
  }

  /** Bytes a frame of `count` blocks from `first` takes. */
  bytesFor(first: number, count: number): number {
    const end = first + count - 1;
    return (count - 1) * this.stride + 4 + this.payloadLength(end);
  }

  /**
   * A frame of blocks `first` .. `first + count − 1` (all within 1..last) with headers written and
   * payloads left for the caller. Fresh memory each time: a packet handed to the kernel may still
   * be queued, so frames are never reused.
   */
  allocate(first: number, count: number): Buffer {
    if (first < 1 || count < 1 || first + count - 1 > this.last)
      throw new RangeError(`blocks ${first}+${count} outside 1..${this.last}`);
    const buf = Buffer.allocUnsafeSlow(this.bytesFor(first, count));
    for (let i = 0; i < count; i++) {
      const at = i * this.stride;
      buf.writeUInt16BE(Opcode.DATA, at);
      buf.writeUInt16BE(wireBlock(first + i), at + 2);
    }
    return buf;
  }

  /** The payload areas of a frame from `allocate`, in file order: one read fills them all. */
  payloads(frame: Buffer, first: number, count: number): Buffer[] {
    const out: Buffer[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const at = i * this.stride + 4;
      out[i] = frame.subarray(at, at + this.payloadLength(first + i));
    }
    return out;
  }

  /** The DATA packet of block `b` inside a frame that starts at block `first`. */
  packet(frame: Buffer, first: number, b: number): Buffer {
    const at = (b - first) * this.stride;
    return frame.subarray(at, at + 4 + this.payloadLength(b));
  }

  /** Frame blocks `first` .. `first + count − 1` of `data` (the whole transfer, in memory). */
  frameFrom(data: Uint8Array, first: number, count: number): Buffer {
    if (data.length !== this.size) throw new RangeError(`data is ${data.length} bytes, layout ${this.size}`);
    const frame = this.allocate(first, count);
    const parts = this.payloads(frame, first, count);
    for (let i = 0; i < count; i++) {
      const off = this.offsetOf(first + i);
      parts[i]!.set(data.subarray(off, off + parts[i]!.length));
    }
    return frame;
  }
}
