import { availableParallelism, hostname } from 'node:os';
import type Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import { ChildPool } from '../lib/child-pool.js';
import { KilnError } from '../lib/errors.js';
import { explainListenError } from '../lib/listen-error.js';
import type { Logger } from '../lib/logger.js';
import { configureNative } from '../native/index.js';
import { probePortFree } from '../net/port-probe.js';
import { workerKey } from '../rpc/discovery.js';
import { openRegionDatabase } from '../storage/region-db.js';
import { deleteRegionWorker, listRegionWorkers } from '../storage/region-workers.js';
import { collectFromWorkers, isMetricsMessage } from './metrics-ipc.js';
import { ensureRegionSecrets } from './secrets.js';

export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  /** Script and arguments a worker runs; defaults to this program's `__region-worker`. */
  workerCommand?: { script: string; args: string[] };
  /** Milliseconds workers get to drain on stop before they are killed. */
  stopTimeoutMs?: number;
}

export interface RegionSupervisor {
  /** Live workers' pids by worker number (1-based). */
  pids(): Map<number, number>;
  stop(): Promise<void>;
}

/** How many workers: config, or one per CPU; one only when the port cannot be shared. */
export function workerCount(config: Config, logger: Logger): number {
  const wanted = config.region.workers === 0 ? availableParallelism() : config.region.workers;
  const native = configureNative({ enabled: config.native.enabled });
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const nodeReusePort = major > 22 || (major === 22 && minor >= 12);
  if (wanted > 1 && !native.available && !nodeReusePort) {
    logger.warn(
      { wanted, reason: native.reason },
      'SO_REUSEPORT is unavailable (native addon missing or disabled, Node < 22.12): running ONE region worker',
    );
    return 1;
  }
  return wanted;
}

/**
 * The region supervisor: forks the workers, restarts a crashed one with backoff, drops a dead
 * worker's record at once (so racks stop looking for it), merges /metrics for whichever worker
 * is scraped, and on stop asks every worker to drain.
 */
export async function startSupervisor(opts: SupervisorOptions): Promise<RegionSupervisor> {
  const { config, logger } = opts;
  // Workers share the ports with SO_REUSEPORT, which would let a second region (or anything else
  // of ours) share them silently: make sure nobody holds them before the first worker binds.
  for (const [what, kind, host, port, key] of [
    ['Region HTTP', 'tcp', config.region.http.host, config.region.http.port, 'region.http.port'],
    ['Region RPC', 'tcp', config.region.rpc.host, config.region.rpc.port, 'region.rpc.port'],
  ] as const) {
    try {
      await probePortFree(kind, host, port);
    } catch (err) {
      throw new KilnError(
        'KILN_ERR_PORT_IN_USE',
        explainListenError(err, what, port, key).replace(/ The other services keep running\.$/, ''),
        { port },
      );
    }
  }
  await ensureRegionSecrets(config.data_dir, logger);
  // Migrations run here once, not in N workers at the same moment.
  const db: Database.Database = openRegionDatabase(config.data_dir, logger);
  const host = hostname();
  // Records of this host's workers from an earlier run are stale by definition.
  for (const w of listRegionWorkers(db)) if (w.host === host) deleteRegionWorker(db, w.id);

  const count = workerCount(config, logger);
  const pool: ChildPool = new ChildPool({
    name: 'region worker',
    logger,
    script: opts.workerCommand?.script ?? process.argv[1]!,
    args: opts.workerCommand?.args ?? ['__region-worker'],
    execArgv: process.execArgv,
    startMessage: (slot) => ({ kiln: 'start', index: slot.index, config }),
    stopMessage: { kiln: 'stop' },
    stopTimeoutMs: opts.stopTimeoutMs,
    onMessage(slot, child, m) {
      if (!isMetricsMessage(m)) return;
      const msg = m as unknown as { kiln: string; id?: string };
      if (msg.kiln === 'ready') {
        logger.info({ worker: slot.index, pid: child.pid }, 'region worker ready');
        pool.markReady(slot);
      } else if (msg.kiln === 'metrics-request') {
        collectFromWorkers(pool.live(), 3000).then(
          (text) => pool.send(child, { kiln: 'metrics-response', id: msg.id, text }),
          (err: Error) => pool.send(child, { kiln: 'metrics-response', id: msg.id, error: err.message }),
        );
      }
    },
    onExit(_slot, child) {
      // Dropped at once, so racks stop looking for it.
      try {
        deleteRegionWorker(db, workerKey(host, child.pid ?? -1));
      } catch (err) {
        logger.warn({ err }, 'could not drop a dead worker record');
      }
    },
  });

  const results = await Promise.all(Array.from({ length: count }, (_, i) => pool.start(i + 1)));
  logger.info(
    { workers: count, ready: results.filter(Boolean).length, pids: pool.slots.map((s) => s.child?.pid) },
    'region supervisor running',
  );

  return {
    pids: () => pool.pids(),
    async stop() {
      await pool.stop();
      db.close();
    },
  };
}
