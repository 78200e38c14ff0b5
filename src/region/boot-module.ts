import { registerBootConfigHandler } from './boot-config.js';
import { metadataRoutes } from './http/metadata.js';
import type { RegionModule } from './modules.js';

/**
 * The region's boot module, run in every worker: the GetBootConfig handler racks ask for each
 * booting machine, and the metadata API (`POST /metadata/v1/hardware`) the booted machines report to.
 */
export const bootModule: RegionModule = (ctx) => {
  const logger = ctx.logger.child({ module: 'boot' });
  registerBootConfigHandler(ctx.handlers, { db: ctx.db, config: ctx.config, logger });
  ctx.plugins.push(metadataRoutes({ db: ctx.db, logger }));
};
