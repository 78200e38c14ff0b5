import type Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { HandlerRegistry } from '../rpc/handlers.js';
import { bootModule } from './boot-module.js';
import { dhcpModule } from './dhcp-module.js';
import type { RoutePlugin } from './http/plugin.js';
import { imagesModule } from './images-module.js';
import type { RegionRpcServer } from './rpc-server.js';

/**
 * What a region module gets inside each worker process: it registers RPC handlers (rack → region
 * commands such as GetBootConfig) and HTTP route plugins (metadata API, images...).
 */
export interface RegionModuleContext {
  config: Config;
  logger: Logger;
  db: Database.Database;
  /** Add handlers: `ctx.handlers.register(GetBootConfig, (args, call) => ...)`. */
  handlers: HandlerRegistry;
  /** Push route plugins; they are mounted before the region's own routes. */
  plugins: RoutePlugin[];
  /** The shared RPC secret (for tokens derived from it). */
  secret: Buffer;
  /** This worker's RPC server, to call racks (`rpc.callRack(systemId, Identify, {})`); set later. */
  rpc: () => RegionRpcServer | null;
}

export type RegionModule = (ctx: RegionModuleContext) => void | Promise<void>;

/**
 * Every region worker runs these at start, in order. Workers are separate processes, so modules
 * are listed here rather than passed in: add one line per module (boot config, metadata API, ...).
 */
export const regionModules: RegionModule[] = [bootModule, imagesModule, dhcpModule];
