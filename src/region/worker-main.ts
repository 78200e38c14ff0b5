import type { Config } from '../config/schema.js';
import { createLogger } from '../lib/logger.js';
import { firstParentMessage, forkedByParent, onStopSignals } from '../lib/pool-child.js';
import { configureNative } from '../native/index.js';
import { isMetricsMessage } from './metrics-ipc.js';
import { startRegionWorker } from './worker.js';

/**
 * Entry of a forked region worker (`kiln __region-worker <n>`, see supervisor.ts). The supervisor
 * sends the already-validated config over IPC, so every worker runs with exactly the supervisor's
 * settings; the worker reports `ready` with its ports, drains on `stop`/SIGTERM, and exits when the
 * supervisor goes away.
 */
interface StartMessage {
  kiln: 'start';
  index: number;
  config: Config;
}

/** `start` and `stop` share the `kiln` field with the metrics messages on the same channel. */
function kindOf(m: unknown): string | undefined {
  return isMetricsMessage(m) ? (m as unknown as { kiln: string }).kiln : undefined;
}

export async function run(_ctx: { args: string[]; configFile: string | undefined }): Promise<number> {
  if (!forkedByParent('__region-worker', 'region')) return 2;
  const start = await firstParentMessage(
    (m) => (kindOf(m) === 'start' ? (m as StartMessage) : null),
    'supervisor went away before sending the config',
  );
  const { config, index } = start;
  process.title = `kiln-region: worker ${index}`;
  const logger = createLogger({ level: config.log.level, name: 'kiln-region' }).child({
    worker_index: index,
  });
  configureNative({ enabled: config.native.enabled });
  const worker = await startRegionWorker({ config, logger, supervised: true });
  process.send?.({ kiln: 'ready', index, id: worker.id, rpcPort: worker.rpcPort, httpPort: worker.httpPort });

  await new Promise<void>((resolve) => {
    onStopSignals(() => resolve());
    process.on('message', (m: unknown) => {
      if (kindOf(m) === 'stop') resolve();
    });
  });
  logger.info('region worker stopping');
  await worker.stop();
  // IPC keeps the event loop alive; this worker is done.
  process.disconnect?.();
  return 0;
}
