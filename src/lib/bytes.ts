import { DecodeError } from './errors.js';

/**
 * A cursor over bytes received from the network. Every read checks the remaining length first and
 * throws DecodeError (never RangeError, never a silent zero) so codecs stay total functions:
 * any input yields either a value or a typed error.
 */
export class ByteReader {
  private pos: number;

  constructor(
    private readonly buf: Uint8Array,
    offset = 0,
    private readonly end: number = buf.length,
  ) {
    if (offset < 0 || offset > end || end > buf.length) throw new DecodeError('reader bounds out of range');
    this.pos = offset;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new DecodeError(
        `truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`,
      );
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    const v = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A copy of the next n bytes as a Buffer, safe to keep after the packet buffer is reused. */
  copy(n: number, what = 'bytes'): Buffer {
    return Buffer.from(this.bytes(n, what));
  }

  rest(): Uint8Array {
    return this.bytes(this.remaining, 'rest');
  }

  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.pos += n;
  }
}

/** An append-only byte builder for encoders. Grows by doubling; `finish()` returns an exact Buffer. */
export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 576) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  /** Overwrite a u8 already written, e.g. a length byte known only after its contents. */
  setU8(at: number, v: number): this {
    if (at < 0 || at >= this.pos) throw new RangeError(`setU8 at ${at} outside written range`);
    this.buf[at] = v & 0xff;
    return this;
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}
