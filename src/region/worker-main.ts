import type { Config } from '../config/schema.js';
import { createLogger } from '../lib/logger.js';
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

function waitForStart(): Promise<StartMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (isMetricsMessage(m) && (m as unknown as { kiln: string }).kiln === 'start') {
        process.off('message', onMessage);
        resolve(m as unknown as StartMessage);
      }
    };
    process.on('message', onMessage);
    process.once('disconnect', () => reject(new Error('supervisor went away before sending the config')));
  });
}

export async function run(_ctx: { args: string[]; configFile: string | undefined }): Promise<number> {
  if (!process.send) {
    process.stderr.write('kiln __region-worker is started by `kiln region`, not by hand\n');
    return 2;
  }
  const start = await waitForStart();
  const { config, index } = start;
  process.title = `kiln-region: worker ${index}`;
  const logger = createLogger({ level: config.log.level, name: 'kiln-region' }).child({
    worker_index: index,
  });
  configureNative({ enabled: config.native.enabled });
  const worker = await startRegionWorker({ config, logger, supervised: true });
  process.send({ kiln: 'ready', index, id: worker.id, rpcPort: worker.rpcPort, httpPort: worker.httpPort });

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
    process.once('disconnect', done);
    process.on('message', (m: unknown) => {
      if (isMetricsMessage(m) && (m as unknown as { kiln: string }).kiln === 'stop') done();
    });
  });
  logger.info('region worker stopping');
  await worker.stop();
  // IPC keeps the event loop alive; this worker is done.
  process.disconnect?.();
  return 0;
}
