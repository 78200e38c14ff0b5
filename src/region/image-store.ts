import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { KilnError, NotFoundError, ValidationError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import {
  FileMismatchError,
  FileTooLargeError,
  type VerifiedFile,
  writeVerifiedFile,
} from '../lib/verified-file.js';

/**
 * The region's content-addressed file store: every boot file lives once at
 * `<data_dir>/images/sha256/<hex>`, whatever resources name it. Files arrive streamed (from a local
 * path, an http(s) URL or an upload body) into `<data_dir>/images/tmp/`, are hashed on the way, and
 * are renamed into place only when complete and matching the expected sha256, so a reader never
 * sees a partial or wrong file and an interrupted import leaves nothing behind but a temp file that
 * the next start removes.
 */

export const SHA256_RE = /^[0-9a-f]{64}$/;

export interface StoredFile {
  sha256: string;
  size: number;
  path: string;
}

export interface ImportProgress {
  /** What is being imported (a path or URL), for display. */
  label: string;
  bytes: number;
  /** null when the source did not say (HTTP without Content-Length). */
  total: number | null;
  done: boolean;
}

export interface PutOptions {
  /** When given, the file must hash to this or the import fails and nothing is kept. */
  sha256?: string | undefined;
  /** Refuse sources bigger than this (bytes). */
  maxBytes?: number | undefined;
  /** Size the source claims, for progress; HTTP Content-Length fills it for URLs. */
  total?: number | null | undefined;
  label?: string | undefined;
  onProgress?: ((p: ImportProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface ImageStoreOptions {
  dataDir: string;
  logger: Logger;
  /** Give up on an http(s) source that sends nothing for this long. */
  fetchIdleTimeoutMs?: number;
}

/** The sha256 of what arrived is not the one promised. */
export class ChecksumMismatchError extends KilnError {
  constructor(expected: string, actual: string, label: string) {
    super('KILN_ERR_IMAGE_SHA256_MISMATCH', `${label}: sha256 is ${actual}, expected ${expected}`, {
      expected,
      actual,
    });
  }
}

/** A file is bigger than the store accepts. */
export class ImageTooLargeError extends KilnError {
  constructor(label: string, maxBytes: number) {
    super('KILN_ERR_IMAGE_TOO_LARGE', `${label} is larger than the limit of ${maxBytes} bytes`, { maxBytes });
  }
}

/** A source could not be read (missing file, HTTP error, connection lost). */
export class ImageSourceError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>, cause?: unknown) {
    super('KILN_ERR_IMAGE_SOURCE', message, details, { cause });
  }
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export function checkSha256(value: string, what = 'sha256'): string {
  const v = value.toLowerCase();
  if (!SHA256_RE.test(v))
    throw new ValidationError(`${what} must be 64 hex digits`, { value: value.slice(0, 80) });
  return v;
}

const PROGRESS_EVERY_BYTES = 4 * 1024 * 1024;

export class ImageStore {
  readonly dataDir: string;
  readonly root: string;
  readonly filesDir: string;
  readonly tmpDir: string;
  private readonly logger: Logger;
  private readonly idleTimeoutMs: number;

  constructor(opts: ImageStoreOptions) {
    this.dataDir = resolve(opts.dataDir);
    this.root = join(this.dataDir, 'images');
    this.filesDir = join(this.root, 'sha256');
    this.tmpDir = join(this.root, 'tmp');
    this.logger = opts.logger;
    this.idleTimeoutMs = opts.fetchIdleTimeoutMs ?? 60_000;
    mkdirSync(this.filesDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Removes temp files that processes no longer alive left (a crash or kill mid-import). Temp
   * names start with the writer's pid, so any region worker may call this at start without
   * touching an import another live worker is running.
   */
  removeStrayTempFiles(): number {
    let n = 0;
    for (const name of readdirSync(this.tmpDir)) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (pid && pid !== process.pid && isAlive(pid)) continue;
      if (pid === process.pid) continue;
      rmSync(join(this.tmpDir, name), { force: true, recursive: true });
      n++;
    }
    if (n > 0) this.logger.info({ count: n }, 'removed unfinished image imports');
    return n;
  }

  /** Absolute path of a complete, verified file, or null when the store lacks it. */
  pathFor(sha256: string): string | null {
    if (!SHA256_RE.test(sha256)) return null;
    const p = join(this.filesDir, sha256);
    return existsSync(p) ? p : null;
  }

  stat(sha256: string): StoredFile | null {
    const p = this.pathFor(sha256);
    if (!p) return null;
    return { sha256, size: statSync(p).size, path: p };
  }

  /** Every stored file's sha256. */
  list(): string[] {
    return readdirSync(this.filesDir).filter((n) => SHA256_RE.test(n));
  }

  /** Deletes stored files not in `keep` (e.g. files no boot resource names any more). */
  removeUnreferenced(keep: ReadonlySet<string>): string[] {
    const removed: string[] = [];
    for (const sha of this.list()) {
      if (keep.has(sha)) continue;
      rmSync(join(this.filesDir, sha), { force: true });
      removed.push(sha);
    }
    if (removed.length > 0) this.logger.info({ count: removed.length }, 'removed unreferenced image files');
    return removed;
  }

  /** Imports from a local path or an http(s) URL. */
  async put(source: string, opts: PutOptions = {}): Promise<StoredFile> {
    const label = opts.label ?? source;
    if (opts.sha256 !== undefined) {
      const expected = checkSha256(opts.sha256);
      const have = this.stat(expected);
      // Content-addressed: a file already here under that name is that content; skip the copy.
      if (have) {
        opts.onProgress?.({ label, bytes: have.size, total: have.size, done: true });
        return have;
      }
    }
    if (isUrl(source)) return this.putUrl(source, { ...opts, label });
    let total: number;
    try {
      const st = statSync(source);
      if (!st.isFile()) throw new ImageSourceError(`${source} is not a regular file`, { source });
      total = st.size;
    } catch (err) {
      if (err instanceof KilnError) throw err;
      throw new ImageSourceError(`cannot read ${source}: ${(err as Error).message}`, { source }, err);
    }
    return this.putStream(createReadStream(source, { highWaterMark: 1024 * 1024 }), {
      ...opts,
      label,
      total,
    });
  }

  private async putUrl(url: string, opts: PutOptions): Promise<StoredFile> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => controller.abort(new ImageSourceError(`${url}: no data for ${this.idleTimeoutMs} ms`, { url })),
        this.idleTimeoutMs,
      );
      idle.unref();
    };
    try {
      arm();
      let res: Response;
      try {
        res = await fetch(url, { signal: controller.signal, redirect: 'follow' });
      } catch (err) {
        throw new ImageSourceError(`cannot fetch ${url}: ${describeFetchError(err)}`, { url }, err);
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel().catch(() => {});
        throw new ImageSourceError(`cannot fetch ${url}: HTTP ${res.status}`, { url, status: res.status });
      }
      const lenHeader = res.headers.get('content-length');
      const len = lenHeader === null ? Number.NaN : Number(lenHeader);
      const total = Number.isSafeInteger(len) && len >= 0 ? len : null;
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
      const result = await this.putStream(body, { ...opts, total, signal: controller.signal }, arm);
      if (total !== null && result.size !== total) {
        // Cannot happen after a verified sha256, but a short body without one must not pass.
        throw new ImageSourceError(`${url}: got ${result.size} bytes, Content-Length said ${total}`, { url });
      }
      return result;
    } catch (err) {
      if (err instanceof KilnError) throw err;
      const reason = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof KilnError) throw reason;
      throw new ImageSourceError(`cannot fetch ${url}: ${describeFetchError(err)}`, { url }, err);
    } finally {
      clearTimeout(idle);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Streams bytes into the store: temp file, sha256 on the way, fsync, verify, rename. On any
   * failure (bad sha256, source error, abort, too big) the temp file is removed and nothing is kept.
   */
  async putStream(stream: Readable, opts: PutOptions = {}, onChunk?: () => void): Promise<StoredFile> {
    const label = opts.label ?? 'upload';
    const expected = opts.sha256 !== undefined ? checkSha256(opts.sha256) : undefined;
    const total = opts.total ?? null;
    const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (total !== null && total > maxBytes) {
      stream.destroy();
      throw new ImageTooLargeError(label, maxBytes);
    }
    let reported = 0;
    const onProgress = opts.onProgress;
    let file: VerifiedFile;
    try {
      file = await writeVerifiedFile(stream, {
        tmpDir: this.tmpDir,
        destDir: this.filesDir,
        // The pid names the writer, for removeStrayTempFiles.
        tmpPrefix: `${process.pid}-`,
        maxBytes,
        sha256: expected,
        signal: opts.signal,
        onChunk: (bytes) => {
          onChunk?.();
          if (onProgress && bytes - reported >= PROGRESS_EVERY_BYTES) {
            reported = bytes;
            onProgress({ label, bytes, total, done: false });
          }
        },
      });
    } catch (err) {
      if (err instanceof FileTooLargeError) throw new ImageTooLargeError(label, maxBytes);
      if (err instanceof FileMismatchError)
        throw new ChecksumMismatchError(expected!, err.actual.sha256, label);
      if (err instanceof KilnError) throw err;
      if (opts.signal?.aborted && opts.signal.reason instanceof KilnError) throw opts.signal.reason;
      throw new ImageSourceError(`${label}: ${describeFetchError(err)}`, { source: label }, err);
    }
    onProgress?.({ label, bytes: file.size, total: total ?? file.size, done: true });
    this.logger.info({ sha256: file.sha256, size: file.size, source: label }, 'image file stored');
    return file;
  }

  /** A stored file as a stream, for serving to racks. */
  open(sha256: string): { stream: Readable; size: number } {
    const st = this.stat(sha256);
    if (!st) throw new NotFoundError(`no image file ${sha256}`, { sha256 });
    return { stream: createReadStream(st.path, { highWaterMark: 1024 * 1024 }), size: st.size };
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}
