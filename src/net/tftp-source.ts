/**
 * Where a TFTP transfer's bytes come from: a file read in chunks on demand (big files never sit
 * whole in memory, once per transfer) or a rendered body already in memory.
 */
import { constants, type Stats, statSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { toNetascii } from '../protocols/tftp/netascii.js';

export interface TransferSource {
  /** Bytes as they go on the wire (after netascii encoding, if any): what tsize reports. */
  readonly size: number;
  /** All the bytes, when they are in memory already: the transfer then never calls read(). */
  readonly whole?: Uint8Array;
  /**
   * Up to `length` bytes from `offset` (fewer only at the end). The buffer is the caller's to keep
   * until it asks again; packets copy out of it.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Fill `buffers` in order with the bytes from `offset` on (one preadv for a file: a transfer
   * reads straight into its framed packets). Resolves to the bytes filled, fewer only at the end.
   */
  readv(buffers: Uint8Array[], offset: number): Promise<number>;
  close(): Promise<void>;
}

export class ContentSource implements TransferSource {
  readonly size: number;

  constructor(
    readonly whole: Uint8Array,
    private readonly onClose?: () => void,
  ) {
    this.size = whole.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.whole.subarray(offset, Math.min(offset + length, this.size));
  }

  async readv(buffers: Uint8Array[], offset: number): Promise<number> {
    let at = offset;
    for (const b of buffers) {
      const part = this.whole.subarray(at, Math.min(at + b.length, this.size));
      b.set(part);
      at += part.length;
      if (part.length < b.length) break;
    }
    return at - offset;
  }

  async close(): Promise<void> {
    this.onClose?.();
  }
}

export class FileSource implements TransferSource {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** Opens a regular file; anything else (a directory, a device) is reported as not a file. */
  static async open(path: string): Promise<FileSource | 'not-a-file'> {
    const handle = await open(path, constants.O_RDONLY);
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return 'not-a-file';
      }
      return new FileSource(handle, st.size);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    // A file that shrinks under a transfer ends it short; the read returns what is there.
    while (got < want) {
      const { bytesRead } = await this.handle.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  async readv(buffers: Uint8Array[], offset: number): Promise<number> {
    let got = 0;
    let rest = buffers;
    // preadv may stop early (a shrinking file, a signal); go on from where it stopped.
    while (rest.length > 0) {
      const { bytesRead } = await this.handle.readv(rest, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
      rest = unfilled(rest, bytesRead);
    }
    return got;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** The part of `buffers` left after the first `filled` bytes. */
function unfilled(buffers: Uint8Array[], filled: number): Uint8Array[] {
  let left = filled;
  let i = 0;
  while (i < buffers.length && left >= buffers[i]!.length) left -= buffers[i++]!.length;
  if (i === buffers.length) return [];
  const rest = buffers.slice(i);
  rest[0] = rest[0]!.subarray(left);
  return rest;
}

/**
 * netascii changes the length, so block N no longer maps to a file offset; text files are small
 * (configs), so they are encoded whole. Past `maxBytes` the request is refused instead.
 */
export async function netasciiSource(
  source: TransferSource,
  maxBytes: number,
): Promise<ContentSource | null> {
  try {
    if (source.size > maxBytes) return null;
    const raw = await source.read(0, source.size);
    return new ContentSource(toNetascii(raw));
  } finally {
    await source.close();
  }
}

interface CachedFile {
  path: string;
  stats: Stats;
  body: Buffer;
  refs: number;
  idleSince: number;
}

const sameFile = (a: Stats, b: Stats) =>
  a.ino === b.ino &&
  a.dev === b.dev &&
  a.size === b.size &&
  a.mtimeMs === b.mtimeMs &&
  a.ctimeMs === b.ctimeMs;

/**
 * Opens files for transfers, sharing small ones. In a boot storm hundreds of machines ask for the
 * same loader (undionly.kpxe, ~70 kB) within seconds: one read serves them all. Every request
 * still stats the path, so a file replaced on disk (the image cache renames new files into
 * place) is served new at once. Files over `maxSharedBytes` are read in chunks per transfer.
 * Unused entries linger `lingerMs`, and at most `maxCachedBytes` of unused ones are kept.
 */
export class FileOpener {
  private readonly cache = new Map<string, CachedFile>();
  private loading = new Map<string, Promise<CachedFile | 'not-a-file'>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxSharedBytes = 4 << 20,
    private readonly maxCachedBytes = 64 << 20,
    private readonly lingerMs = 5000,
  ) {}

  async open(path: string): Promise<TransferSource | 'not-a-file'> {
    // Synchronous on purpose. The resolver has just walked this path (realpath), so its inode is
    // in the kernel's cache and the stat costs a few microseconds; the thread-pool round trip of an
    // async stat cost far more when hundreds of requests arrive at once on a busy 2-core rack
    // (profiled: the main thread waiting on the pool's lock while its threads were not scheduled).
    const st = statSync(path);
    if (!st.isFile()) return 'not-a-file';
    if (st.size > this.maxSharedBytes) return FileSource.open(path);
    let entry = this.cache.get(path);
    if (!entry || !sameFile(entry.stats, st)) {
      const key = `${path}\0${st.ino}:${st.mtimeMs}:${st.size}`;
      let pending = this.loading.get(key);
      if (!pending) {
        pending = this.load(path, st);
        this.loading.set(key, pending);
        pending.finally(() => this.loading.delete(key)).catch(() => {});
      }
      const loaded = await pending;
      if (loaded === 'not-a-file') return loaded;
      entry = loaded;
    }
    const e = entry;
    e.refs++;
    let closed = false;
    return new ContentSource(e.body, () => {
      if (closed) return;
      closed = true;
      e.refs--;
      if (e.refs === 0) {
        e.idleSince = Date.now();
        this.trim();
      }
    });
  }

  /** Drop every unused entry now (server shutting down). */
  clear(): void {
    for (const [path, e] of this.cache) if (e.refs === 0) this.cache.delete(path);
    if (this.sweeper) clearTimeout(this.sweeper);
    this.sweeper = undefined;
  }

  private async load(path: string, before: Stats): Promise<CachedFile | 'not-a-file'> {
    const src = await FileSource.open(path);
    if (src === 'not-a-file') return src;
    try {
      const body = Buffer.from(await src.read(0, src.size));
      const entry: CachedFile = { path, stats: before, body, refs: 0, idleSince: Date.now() };
      // Replaced while we read: serve what we read, but do not keep it for others.
      const after = await stat(path);
      if (sameFile(before, after) && body.length === before.size) this.cache.set(path, entry);
      return entry;
    } finally {
      await src.close();
    }
  }

  private trim(): void {
    const now = Date.now();
    let idleBytes = 0;
    const idle = [...this.cache.values()]
      .filter((e) => e.refs === 0)
      .sort((a, b) => b.idleSince - a.idleSince);
    for (const e of idle) {
      idleBytes += e.body.length;
      if (now - e.idleSince >= this.lingerMs || idleBytes > this.maxCachedBytes) {
        if (this.cache.get(e.path) === e) this.cache.delete(e.path);
      }
    }
    if (!this.sweeper && idle.length > 0) {
      this.sweeper = setTimeout(() => {
        this.sweeper = undefined;
        this.trim();
      }, this.lingerMs);
      this.sweeper.unref();
    }
  }
}
