import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import { startSupervisor } from './supervisor.js';

/**
 * The region role: a supervisor forking `region.workers` worker processes that share the HTTP
 * and RPC ports (SO_REUSEPORT). Called by main.ts for `kiln region` and `kiln all`; creates the
 * data_dir, database, RPC secret and CA on first start.
 */
export async function startRegion(opts: {
  config: Config;
  logger: Logger;
}): Promise<{ stop(): Promise<void> }> {
  const supervisor = await startSupervisor(opts);
  return { stop: () => supervisor.stop() };
}
