import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism, hostname } from 'node:os';
import type Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import { configureNative } from '../native/index.js';
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

interface Slot {
  index: number;
  child: ChildProcess | null;
  /** Consecutive quick crashes, for the backoff. */
  crashes: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** Backoff after a crash: 100 ms, doubling per quick crash in a row, at most 10 s. */
export function restartDelayMs(crashes: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, crashes - 1));
}
/** A worker that ran this long before dying is not crash-looping. */
const STABLE_MS = 30_000;

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
  await ensureRegionSecrets(config.data_dir, logger);
  // Migrations run here once, not in N workers at the same moment.
  const db: Database.Database = openRegionDatabase(config.data_dir, logger);
  const host = hostname();
  // Records of this host's workers from an earlier run are stale by definition.
  for (const w of listRegionWorkers(db)) if (w.host === host) deleteRegionWorker(db, w.id);

  const count = workerCount(config, logger);
  const script = opts.workerCommand?.script ?? process.argv[1]!;
  const baseArgs = opts.workerCommand?.args ?? ['__region-worker'];
  const slots: Slot[] = [];
  let stopping = false;

  const live = () => slots.filter((s) => s.child?.connected).map((s) => s.child!);

  const spawn = (slot: Slot, onReady?: (ok: boolean) => void) => {
    slot.startedAt = Date.now();
    const child = fork(script, [...baseArgs, String(slot.index)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    slot.child = child;
    child.on('message', (m: unknown) => {
      if (!isMetricsMessage(m)) return;
      const msg = m as unknown as { kiln: string; id?: string };
      if (msg.kiln === 'ready') {
        logger.info({ worker: slot.index, pid: child.pid }, 'region worker ready');
        onReady?.(true);
        onReady = undefined;
      } else if (msg.kiln === 'metrics-request') {
        collectFromWorkers(live(), 3000).then(
          (text) => child.connected && child.send({ kiln: 'metrics-response', id: msg.id, text }, () => {}),
          (err: Error) =>
            child.connected &&
            child.send({ kiln: 'metrics-response', id: msg.id, error: err.message }, () => {}),
        );
      }
    });
    child.on('error', (err) => logger.error({ err, worker: slot.index }, 'region worker process error'));
    child.once('exit', (code, signal) => {
      slot.child = null;
      try {
        deleteRegionWorker(db, workerKey(host, child.pid ?? -1));
      } catch (err) {
        logger.warn({ err }, 'could not drop a dead worker record');
      }
      onReady?.(false);
      onReady = undefined;
      if (stopping) return;
      slot.crashes = Date.now() - slot.startedAt > STABLE_MS ? 1 : slot.crashes + 1;
      const delay = restartDelayMs(slot.crashes);
      logger.error(
        { worker: slot.index, pid: child.pid, code, signal, restart_in_ms: delay },
        'region worker died; restarting',
      );
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined;
        if (!stopping) spawn(slot);
      }, delay);
    });
    child.send({ kiln: 'start', index: slot.index, config }, () => {});
  };

  const ready: Array<Promise<boolean>> = [];
  for (let i = 1; i <= count; i++) {
    const slot: Slot = { index: i, child: null, crashes: 0, startedAt: 0, restartTimer: undefined };
    slots.push(slot);
    ready.push(new Promise((resolve) => spawn(slot, resolve)));
  }
  const results = await Promise.all(ready);
  logger.info(
    { workers: count, ready: results.filter(Boolean).length, pids: slots.map((s) => s.child?.pid) },
    'region supervisor running',
  );

  return {
    pids() {
      const m = new Map<number, number>();
      for (const s of slots) if (s.child?.pid !== undefined) m.set(s.index, s.child.pid);
      return m;
    },
    async stop() {
      stopping = true;
      const waits = slots.map((s) => {
        if (s.restartTimer) clearTimeout(s.restartTimer);
        const child = s.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          // The worker may be exiting already (a terminal's Ctrl-C reaches it too).
          const fallback = () => child.kill('SIGTERM');
          if (child.connected) child.send({ kiln: 'stop' }, (err) => err && fallback());
          else fallback();
          const t = setTimeout(() => child.kill('SIGKILL'), opts.stopTimeoutMs ?? 15_000);
          t.unref();
        });
      });
      await Promise.all(waits);
      db.close();
    },
  };
}
