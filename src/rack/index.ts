import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import { softwareVersion } from '../rpc/version.js';
import { RegionClient } from './region-client.js';
import { readRackSecret } from './secret.js';

/**
 * The rack role. A short composer: each service lives in its own module and is started here.
 * For now: the region client (RPC connections to every region worker).
 */
export async function startRack(opts: {
  config: Config;
  logger: Logger;
}): Promise<{ stop(): Promise<void> }> {
  const { config, logger } = opts;
  const secretFile = config.rack.secret_file || join(config.data_dir, 'secret');
  const region = new RegionClient({
    regionUrls: config.rack.region_urls,
    secret: readRackSecret(secretFile),
    dataDir: config.data_dir,
    hostname: hostname(),
    name: config.rack.name || null,
    software: softwareVersion(),
    logger: logger.child({ part: 'region-client' }),
  });
  region.start();
  return {
    async stop() {
      await region.stop();
    },
  };
}
