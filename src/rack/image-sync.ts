import type { Logger } from '../lib/logger.js';
import type { BootImage } from '../rpc/commands/images.js';
import type { CacheFile, ImageCache, SyncResult } from './image-cache.js';

export interface ImageSyncOptions {
  cache: ImageCache;
  /** What the region holds: `() => client.call(ListBootImages, {}).then((r) => r.images)`. */
  list: () => Promise<BootImage[]>;
  logger: Logger;
  /** Poll period; SyncBootImages from the region and (re)connections trigger syncs in between. */
  intervalMs?: number;
}

export interface ImageSync {
  /** Sync now; while one runs, callers share it and one more follows (the list may have changed). */
  syncNow(): Promise<SyncResult | null>;
  stop(): void;
}

export function filesOf(images: readonly BootImage[]): CacheFile[] {
  return images.flatMap((img) =>
    img.files.map((f) => ({ sha256: f.sha256, size: f.size, name: `${img.name}/${f.name}` })),
  );
}

/** Keeps the rack's image cache in line with the region: at start, every interval, and on demand. */
export function startImageSync(opts: ImageSyncOptions): ImageSync {
  let running: Promise<SyncResult | null> | null = null;
  let again = false;
  let stopped = false;

  const once = async (): Promise<SyncResult | null> => {
    try {
      const images = await opts.list();
      const result = await opts.cache.sync(filesOf(images));
      if (result.downloaded.length || result.failed.length || result.evicted.length) {
        opts.logger.info(
          {
            downloaded: result.downloaded.length,
            failed: result.failed.length,
            evicted: result.evicted.length,
          },
          'image cache synced',
        );
      }
      return result;
    } catch (err) {
      opts.logger.info({ err: (err as Error).message }, 'image sync skipped: region not reachable');
      return null;
    }
  };

  const syncNow = (): Promise<SyncResult | null> => {
    if (stopped) return Promise.resolve(null);
    if (running) {
      again = true;
      return running;
    }
    running = once().finally(() => {
      running = null;
      if (again && !stopped) {
        again = false;
        void syncNow();
      }
    });
    return running;
  };

  const timer = setInterval(() => void syncNow(), opts.intervalMs ?? 60_000);
  timer.unref();
  void syncNow();
  return {
    syncNow,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
