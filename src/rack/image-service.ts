import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import { ListBootImages, SyncBootImages } from '../rpc/commands/images.js';
import { ImageCache } from './image-cache.js';
import { type ImageSync, startImageSync } from './image-sync.js';
import type { RegionClient } from './region-client.js';

/** The rack's image cache lives here, apart from the region's store even under `kiln all`. */
export const RACK_IMAGE_DIR = join('rack', 'images');

export interface RackImages {
  /** For the booter (`images:` option): `pathFor(sha256)` gives only complete, verified files. */
  cache: ImageCache;
  sync: ImageSync;
  stop(): void;
}

/**
 * The rack's image service: the cache under `<data_dir>/rack/images`, kept in line with the
 * region's ListBootImages at start, on every (re)connection, every `intervalMs`, and whenever the
 * region sends SyncBootImages (after an import). Downloads use rack.region_urls and the HTTP token
 * RegisterRack handed out.
 */
export function startRackImages(opts: {
  config: Config;
  logger: Logger;
  region: Pick<RegionClient, 'call' | 'httpToken' | 'handlers' | 'on' | 'off'>;
  intervalMs?: number;
}): RackImages {
  const { config, region } = opts;
  const logger = opts.logger.child({ part: 'image-cache' });
  const cache = new ImageCache({
    dir: join(config.data_dir, RACK_IMAGE_DIR),
    maxBytes: config.rack.cache.max_bytes,
    logger,
    source: { regionUrls: () => config.rack.region_urls, token: () => region.httpToken },
  });
  cache.init();
  const sync = startImageSync({
    cache,
    logger,
    intervalMs: opts.intervalMs ?? 60_000,
    list: async () => (await region.call(ListBootImages, {}, { timeout: 30_000 })).images,
  });
  region.handlers.register(SyncBootImages, () => {
    void sync.syncNow();
    return { started: true };
  });
  const onConnected = () => void sync.syncNow();
  region.on('connected', onConnected);
  return {
    cache,
    sync,
    stop() {
      region.off('connected', onConnected);
      sync.stop();
    },
  };
}
