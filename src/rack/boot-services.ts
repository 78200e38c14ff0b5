import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { Mac } from '../lib/mac.js';
import { GetBootConfig } from '../rpc/commands/boot.js';
import { SendEvent } from '../rpc/commands/events.js';
import { BootTimeline } from './boot-timeline.js';
import { Booter, type BootImageFiles } from './booter.js';
import type { RegionClient } from './region-client.js';

/**
 * The rack's boot policy wired to the region: GetBootConfig and SendEvent over the region client,
 * the image cache for `/images/…`. The returned booter is the BootResolver both the TFTP and the
 * boot HTTP server take; the timeline is where other rack parts (DHCP) record their hops too.
 */
export function createRackBooter(opts: {
  config: Config;
  logger: Logger;
  region: Pick<RegionClient, 'call'>;
  images: BootImageFiles;
  /** The DHCP lease store's lookup, so TFTP hops before the iPXE script are attributed. */
  macForAddress?: (ip: string) => Mac | null;
}): { booter: Booter; timeline: BootTimeline } {
  const { config, logger, region } = opts;
  const timeline = new BootTimeline({
    logger: logger.child({ part: 'boot-timeline' }),
    send: (args) => region.call(SendEvent, args, { timeout: 10_000 }),
  });
  const booter = new Booter({
    logger: logger.child({ part: 'booter' }),
    httpPort: config.rack.http.port,
    advertiseAddress: config.rack.advertise_address || undefined,
    images: opts.images,
    timeline,
    macForAddress: opts.macForAddress,
    source: { getBootConfig: (args) => region.call(GetBootConfig, args, { timeout: 15_000 }) },
  });
  return { booter, timeline };
}
