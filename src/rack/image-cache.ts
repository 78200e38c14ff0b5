import { mkdirSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { FileMismatchError, FileTooLargeError, writeVerifiedFile } from '../lib/verified-file.js';

/**
 * The rack's image cache: boot files the region lists, downloaded over HTTP with the rack's token,
 * kept at `<dir>/<sha256>`. A file gets its final name only after its sha256 and size were checked
 * and it was synced to disk, so `pathFor` never hands out a partial or wrong file, and a crash
 * mid-download leaves only a temp file under `<dir>/tmp/`, removed at the next start. Past
 * `maxBytes` the least recently used files go first (files the region no longer lists before
 * listed ones). Concurrent requests for one file share one download.
 */

const SHA256_RE = /^[0-9a-f]{64}$/;

export interface CacheFile {
  sha256: string;
  size: number;
  /** For logs only. */
  name?: string;
}

/** Where files come from: the region's HTTP URLs (tried in order) and the token RegisterRack gave. */
export interface ImageCacheSource {
  regionUrls(): readonly string[];
  token(): string | null;
}

export interface ImageCacheOptions {
  dir: string;
  maxBytes: number;
  logger: Logger;
  source: ImageCacheSource;
  /** A download that receives nothing for this long is abandoned. */
  idleTimeoutMs?: number;
  now?: () => number;
}

export interface SyncResult {
  downloaded: string[];
  failed: Array<{ sha256: string; error: string }>;
  evicted: string[];
}

export class ImageDownloadError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>, cause?: unknown) {
    super('KILN_ERR_IMAGE_DOWNLOAD', message, details, { cause });
  }
}

interface Entry {
  size: number;
  lastUsed: number;
  /** When lastUsed was last written to the file's mtime (survives restarts). */
  persisted: number;
}

/** Persist use times at most this often per file: serving must not turn into metadata writes. */
const PERSIST_EVERY_MS = 60_000;

export class ImageCache {
  readonly dir: string;
  readonly tmpDir: string;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly opts: ImageCacheOptions;
  private readonly now: () => number;
  /** Files the region listed at the last sync: evicted only after every unlisted one. */
  private wanted = new Set<string>();

  constructor(opts: ImageCacheOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.dir = resolve(opts.dir);
    this.tmpDir = join(this.dir, 'tmp');
  }

  /** Creates the directory, removes unfinished downloads, and indexes the complete files. */
  init(): void {
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o755 });
    let stray = 0;
    for (const name of readdirSync(this.tmpDir)) {
      rmSync(join(this.tmpDir, name), { recursive: true, force: true });
      stray++;
    }
    if (stray > 0) this.opts.logger.info({ count: stray }, 'removed unfinished image downloads');
    this.entries.clear();
    for (const name of readdirSync(this.dir)) {
      if (!SHA256_RE.test(name)) continue;
      const st = statSync(join(this.dir, name));
      if (!st.isFile()) continue;
      this.entries.set(name, { size: st.size, lastUsed: st.mtimeMs, persisted: st.mtimeMs });
    }
  }

  /** A complete, verified file's path (marking it used), or null. */
  pathFor(sha256: string): string | null {
    const e = this.entries.get(sha256);
    if (!e) return null;
    const path = join(this.dir, sha256);
    const t = this.now();
    e.lastUsed = t;
    if (t - e.persisted >= PERSIST_EVERY_MS) {
      e.persisted = t;
      try {
        utimesSync(path, new Date(t), new Date(t));
      } catch (err) {
        // Evicted or removed underneath us: forget it rather than hand out a missing path.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.entries.delete(sha256);
          return null;
        }
      }
    }
    return path;
  }

  has(sha256: string): boolean {
    return this.entries.has(sha256);
  }

  usedBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.size;
    return n;
  }

  /** Cached files, least recently used first. */
  list(): Array<{ sha256: string; size: number; lastUsed: number }> {
    return [...this.entries.entries()]
      .map(([sha256, e]) => ({ sha256, size: e.size, lastUsed: e.lastUsed }))
      .sort((a, b) => a.lastUsed - b.lastUsed);
  }

  /**
   * The file's path, downloading it first if needed. Concurrent calls for one sha256 share one
   * download. Evicts past the limit afterwards (never the file just fetched).
   */
  ensure(file: CacheFile): Promise<string> {
    if (!SHA256_RE.test(file.sha256)) {
      return Promise.reject(new ImageDownloadError(`not a sha256: ${String(file.sha256).slice(0, 80)}`));
    }
    const have = this.pathFor(file.sha256);
    if (have) return Promise.resolve(have);
    let p = this.inflight.get(file.sha256);
    if (!p) {
      p = this.download(file).finally(() => this.inflight.delete(file.sha256));
      this.inflight.set(file.sha256, p);
    }
    return p;
  }

  /**
   * Brings the cache in line with what the region lists: downloads what is missing (a few at a
   * time), then evicts past the limit. Failures are reported, not thrown: one bad file must not
   * stop the others.
   */
  async sync(files: readonly CacheFile[], concurrency = 2): Promise<SyncResult> {
    const unique = new Map<string, CacheFile>();
    for (const f of files) if (SHA256_RE.test(f.sha256)) unique.set(f.sha256, f);
    this.wanted = new Set(unique.keys());
    const missing = [...unique.values()].filter((f) => !this.entries.has(f.sha256));
    const before = new Set(this.entries.keys());
    const result: SyncResult = { downloaded: [], failed: [], evicted: [] };
    let next = 0;
    const worker = async () => {
      while (next < missing.length) {
        const f = missing[next++]!;
        try {
          await this.ensure(f);
          result.downloaded.push(f.sha256);
        } catch (err) {
          result.failed.push({ sha256: f.sha256, error: (err as Error).message });
          this.opts.logger.warn(
            { sha256: f.sha256, name: f.name, err: (err as Error).message },
            'image download failed',
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    this.evict();
    // Each download may already have evicted to make room: report every file that left.
    result.evicted = [...before, ...result.downloaded].filter((x) => !this.entries.has(x));
    return result;
  }

  /** Removes least recently used files until the cache fits, unlisted files first. */
  evict(keep?: string): string[] {
    const evicted: string[] = [];
    let used = this.usedBytes();
    if (used <= this.opts.maxBytes) return evicted;
    const order = this.list().sort((a, b) => {
      const wa = this.wanted.has(a.sha256) ? 1 : 0;
      const wb = this.wanted.has(b.sha256) ? 1 : 0;
      return wa - wb || a.lastUsed - b.lastUsed;
    });
    for (const e of order) {
      if (used <= this.opts.maxBytes) break;
      if (e.sha256 === keep || this.inflight.has(e.sha256)) continue;
      // Unlinking a file being served is safe: open descriptors keep reading it.
      rmSync(join(this.dir, e.sha256), { force: true });
      this.entries.delete(e.sha256);
      used -= e.size;
      evicted.push(e.sha256);
    }
    if (evicted.length > 0) {
      this.opts.logger.info(
        { count: evicted.length, used, max: this.opts.maxBytes },
        'evicted cached images',
      );
    }
    return evicted;
  }

  private async download(file: CacheFile): Promise<string> {
    const urls = this.opts.source.regionUrls();
    if (urls.length === 0) throw new ImageDownloadError('no region URL to download images from');
    let last: unknown;
    for (const base of urls) {
      try {
        const path = await this.downloadFrom(base, file);
        this.evict(file.sha256);
        return path;
      } catch (err) {
        last = err;
        this.opts.logger.info(
          { sha256: file.sha256, region: base, err: (err as Error).message },
          'download attempt failed',
        );
      }
    }
    throw last instanceof KilnError
      ? last
      : new ImageDownloadError(`could not download ${file.sha256}`, { sha256: file.sha256 }, last);
  }

  private async downloadFrom(base: string, file: CacheFile): Promise<string> {
    const url = `${base.replace(/\/+$/, '')}/images/${file.sha256}`;
    const idleMs = this.opts.idleTimeoutMs ?? 60_000;
    const controller = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
      idle.unref();
    };
    const started = this.now();
    try {
      arm();
      const token = this.opts.source.token();
      const res = await fetch(url, {
        signal: controller.signal,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!res.ok || !res.body) {
        await res.body?.cancel().catch(() => {});
        throw new ImageDownloadError(`GET ${url}: HTTP ${res.status}`, { url, status: res.status });
      }
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
      const { path, size } = await writeVerifiedFile(body, {
        tmpDir: this.tmpDir,
        destDir: this.dir,
        tmpPrefix: `${file.sha256}.`,
        maxBytes: file.size,
        sha256: file.sha256,
        size: file.size,
        onChunk: arm,
      });
      const t = this.now();
      this.entries.set(file.sha256, { size, lastUsed: t, persisted: t });
      this.opts.logger.info(
        { sha256: file.sha256, name: file.name, size, ms: t - started },
        'image downloaded into the cache',
      );
      return path;
    } catch (err) {
      if (err instanceof FileTooLargeError) {
        throw new ImageDownloadError(`${url}: more than the ${file.size} bytes listed`, { url });
      }
      if (err instanceof FileMismatchError) {
        throw new ImageDownloadError(
          `${url}: got ${err.actual.size} bytes with sha256 ${err.actual.sha256}, expected ${file.size} bytes`,
          { url, expected: file.sha256, actual: err.actual.sha256 },
        );
      }
      if (err instanceof KilnError) throw err;
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      throw new ImageDownloadError(
        `GET ${url}: ${(reason as Error)?.message ?? String(reason)}`,
        { url },
        err,
      );
    } finally {
      clearTimeout(idle);
    }
  }
}
