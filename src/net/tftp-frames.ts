/**
 * The DATA packets of one transfer, framed before they are needed (layout in
 * protocols/tftp/frames.ts): sending a block is a subarray and a send, nothing else.
 *
 * A file in memory (small shared files, rendered configs, netascii) is framed whole once, and the
 * frame is shared by every transfer of the same bytes at the same blksize: a boot storm of iPXE
 * clients asking for undionly.kpxe at blksize 1432 sends all its packets from one buffer. A large
 * file is framed in chunks read straight into the payload areas (one preadv per chunk), always one
 * chunk ahead, so the transfer does not wait on the thread pool at each chunk boundary.
 */
import { FrameLayout } from '../protocols/tftp/frames.js';
import type { TransferSource } from './tftp-source.js';

/** Bytes read per chunk of a large file (rounded to whole blocks, at least one window). */
const CHUNK_BYTES = 64 * 1024;
/** preadv takes at most IOV_MAX (1024 on Linux) buffers; a chunk is one buffer per block. */
const MAX_CHUNK_BLOCKS = 1024;
/** Different blksizes framed per shared body; past this, a frame is kept only by its transfer. */
const MAX_SHARED_FRAMES = 4;

interface Chunk {
  index: number;
  first: number;
  frame: Buffer;
}

/** Whole-file frames by body and blksize. Weak: a body the file cache drops takes its frames along. */
const wholeFrames = new WeakMap<Uint8Array, Map<number, Buffer>>();

function frameWhole(layout: FrameLayout, body: Uint8Array): Buffer {
  let byBlksize = wholeFrames.get(body);
  const cached = byBlksize?.get(layout.blksize);
  if (cached) return cached;
  const frame = layout.frameFrom(body, 1, layout.last);
  if (!byBlksize) {
    byBlksize = new Map();
    wholeFrames.set(body, byBlksize);
  }
  if (byBlksize.size < MAX_SHARED_FRAMES) byBlksize.set(layout.blksize, frame);
  return frame;
}

/** Why framing stopped: the read failed, or the file is shorter than the size announced. */
export type FrameFailure = { kind: 'read-error'; error: Error } | { kind: 'short' };

export class TransferFrames {
  readonly layout: FrameLayout;
  private readonly perChunk: number;
  private chunks: Chunk[] = [];
  /** Index of the chunk being read, or -1. One read at a time per transfer. */
  private loading = -1;
  private closed = false;

  constructor(
    private readonly source: TransferSource,
    blksize: number,
    windowsize: number,
    /** A chunk arrived: whoever got `undefined` from packet() can ask again. */
    private readonly onLoaded: () => void,
    private readonly onFailed: (why: FrameFailure) => void,
  ) {
    this.layout = new FrameLayout(source.size, blksize);
    const last = this.layout.last;
    if (source.whole) {
      this.perChunk = last;
    } else {
      const byBytes = Math.ceil(CHUNK_BYTES / blksize);
      this.perChunk = Math.min(Math.max(windowsize, byBytes), MAX_CHUNK_BLOCKS, last);
    }
  }

  get last(): number {
    return this.layout.last;
  }

  /** Block `b`'s DATA packet, or undefined while its chunk is read (onLoaded follows). */
  packet(b: number): Buffer | undefined {
    const index = Math.floor((b - 1) / this.perChunk);
    for (const c of this.chunks) {
      if (c.index === index) return this.layout.packet(c.frame, c.first, b);
    }
    if (this.source.whole) {
      // In memory: framed now (or found shared), no waiting.
      const frame = frameWhole(this.layout, this.source.whole);
      this.chunks.push({ index: 0, first: 1, frame });
      return this.layout.packet(frame, 1, b);
    }
    this.load(index);
    return undefined;
  }

  /** Blocks from `b` on come next: have their chunk, and the one after it, on the way. */
  prefetch(b: number): void {
    if (this.source.whole || b > this.layout.last) return;
    const index = Math.floor((b - 1) / this.perChunk);
    if (!this.has(index)) this.load(index);
    else if (!this.has(index + 1) && (index + 1) * this.perChunk < this.layout.last) this.load(index + 1);
  }

  /** Blocks below `b` are acknowledged: their chunks can go. */
  release(b: number): void {
    if (this.source.whole) return;
    const per = this.perChunk;
    if (this.chunks.some((c) => c.first + per <= b))
      this.chunks = this.chunks.filter((c) => c.first + per > b);
  }

  close(): void {
    this.closed = true;
    this.chunks = [];
  }

  private has(index: number): boolean {
    return this.loading === index || this.chunks.some((c) => c.index === index);
  }

  private load(index: number): void {
    if (this.loading !== -1 || this.closed) return;
    const first = index * this.perChunk + 1;
    const count = Math.min(this.perChunk, this.layout.last - first + 1);
    const frame = this.layout.allocate(first, count);
    const payloads = this.layout.payloads(frame, first, count);
    let wanted = 0;
    for (const p of payloads) wanted += p.length;
    this.loading = index;
    this.source.readv(payloads, this.layout.offsetOf(first)).then(
      (got) => {
        this.loading = -1;
        if (this.closed) return;
        if (got < wanted) {
          this.onFailed({ kind: 'short' });
          return;
        }
        this.chunks.push({ index, first, frame });
        this.onLoaded();
      },
      (err: unknown) => {
        this.loading = -1;
        if (this.closed) return;
        this.onFailed({ kind: 'read-error', error: err instanceof Error ? err : new Error(String(err)) });
      },
    );
  }
}
