import type { ChildProcess } from 'node:child_process';
import type { Config } from '../config/schema.js';
import { ChildPool, type ChildSlot } from '../lib/child-pool.js';
import { describeError } from '../lib/errors.js';
import { explainListenError } from '../lib/listen-error.js';
import type { Logger } from '../lib/logger.js';
import type { BootResolver } from '../net/boot-source.js';
import { listenError } from './boot-servers.js';
import { addStats } from './rack-metrics.js';
import {
  errorForWire,
  type ListenResult,
  type MainToWorker,
  parseWorkerMessage,
  type WorkerStats,
  type WorkerToMain,
} from './worker-ipc.js';

/**
 * The rack main process's side of its TFTP/HTTP workers: forks them (`kiln __rack-worker <n>`),
 * answers their path lookups with the one Booter this process holds, restarts a worker that dies
 * (with backoff), gathers their counters for /metrics, and on stop asks each one to drain.
 */

export interface RackWorkerPoolOptions {
  config: Config;
  logger: Logger;
  /** The main process's resolver (the Booter, with /metrics in front). */
  resolver: BootResolver;
  count: number;
  /** Script and arguments a worker runs; defaults to this program's `__rack-worker`. */
  workerCommand?: { script: string; args: string[] };
  /** Milliseconds workers get to drain on stop before they are killed. */
  stopTimeoutMs?: number;
  /** Milliseconds start-up waits for each worker's first report. */
  readyTimeoutMs?: number;
}

export interface WorkerSnapshot {
  worker: number;
  /** Counters over every life of this worker slot; gauges from the current one. */
  stats: WorkerStats;
  /** Answered this collection. */
  up: boolean;
  restarts: number;
}

export interface RackWorkerPool {
  /** Live workers' pids by worker number (1-based). */
  pids(): Map<number, number>;
  /** The ports the workers share (resolved when the config says 0), null where binding failed. */
  ports(): { tftp: number | null; http: number | null };
  /** Every worker's counters, asked now; a worker that does not answer in time shows its last figures. */
  collect(timeoutMs?: number): Promise<WorkerSnapshot[]>;
  stop(): Promise<void>;
}

/** Counters of one worker slot, kept across its restarts. */
interface Tally {
  /** Counters of this slot's earlier (dead) workers. */
  base: WorkerStats;
  /** The current worker's last answer. */
  last: WorkerStats | null;
}

export async function startRackWorkers(opts: RackWorkerPoolOptions): Promise<RackWorkerPool> {
  const { config, logger, resolver } = opts;
  // Port 0 (tests) means "any": the first worker picks, the others join the port it got.
  const ports = { tftp: config.rack.tftp.port, http: config.rack.http.port };
  const bound: { tftp: number | null; http: number | null } = { tftp: null, http: null };
  const tallies = new Map<number, Tally>();
  let nextId = 1;
  const waiting = new Map<number, (m: Extract<WorkerToMain, { kiln: 'rack-stats' }>) => void>();

  const tally = (index: number): Tally => {
    let t = tallies.get(index);
    if (!t) {
      t = { base: { tftp: null, http: null }, last: null };
      tallies.set(index, t);
    }
    return t;
  };

  const reportListen = (slot: ChildSlot, what: 'TFTP' | 'Boot HTTP', r: ListenResult | null) => {
    if (!r?.error) return;
    const key = what === 'TFTP' ? 'rack.tftp.port' : 'rack.http.port';
    const port = what === 'TFTP' ? ports.tftp : ports.http;
    logger.error(
      { worker: slot.index, err: r.error.message },
      explainListenError(listenError(r), what, port, key),
    );
  };

  const answer = (child: ChildProcess, id: number, req: Parameters<BootResolver['resolve']>[0]) => {
    resolver.resolve(req).then(
      (source) => pool.send(child, { kiln: 'rack-resolved', id, source } satisfies MainToWorker),
      (err: unknown) =>
        pool.send(child, { kiln: 'rack-resolved', id, error: errorForWire(err) } satisfies MainToWorker),
    );
  };

  const pool: ChildPool = new ChildPool({
    name: 'rack worker',
    logger,
    script: opts.workerCommand?.script ?? process.argv[1]!,
    args: opts.workerCommand?.args ?? ['__rack-worker'],
    execArgv: process.execArgv,
    startMessage: (slot): MainToWorker => ({
      kiln: 'rack-start',
      index: slot.index,
      config,
      tftpPort: ports.tftp,
      httpPort: ports.http,
    }),
    stopMessage: { kiln: 'rack-stop' } satisfies MainToWorker,
    stopTimeoutMs: opts.stopTimeoutMs,
    readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    onMessage(slot, child, m) {
      let msg: WorkerToMain | null;
      try {
        msg = parseWorkerMessage(m);
      } catch (err) {
        logger.warn(
          { worker: slot.index, err: describeError(err) },
          'malformed message from a rack worker dropped',
        );
        return;
      }
      if (!msg) return;
      switch (msg.kiln) {
        case 'rack-resolve':
          answer(child, msg.id, msg.req);
          return;
        case 'rack-stats':
          waiting.get(msg.id)?.(msg);
          return;
        case 'rack-ready':
          reportListen(slot, 'TFTP', msg.tftp);
          reportListen(slot, 'Boot HTTP', msg.http);
          if (msg.tftp?.port !== undefined) bound.tftp = ports.tftp = msg.tftp.port;
          if (msg.http?.port !== undefined) bound.http = ports.http = msg.http.port;
          logger.info(
            { worker: slot.index, pid: child.pid, tftp: msg.tftp?.port, http: msg.http?.port },
            'rack worker ready',
          );
          pool.markReady(slot);
          return;
      }
    },
    onExit(slot) {
      // Its counters so far stay in the totals (up to its last answer).
      const t = tally(slot.index);
      if (t.last) t.base = addStats(t.base, t.last);
      t.last = null;
    },
  });

  // The first worker alone, so that the others are told the ports it got.
  const first = await pool.start(1);
  const rest = await Promise.all(Array.from({ length: opts.count - 1 }, (_, i) => pool.start(i + 2)));
  const ready = [first, ...rest].filter(Boolean).length;
  logger.info(
    {
      workers: opts.count,
      ready,
      pids: pool.slots.map((s) => s.child?.pid),
      tftp: bound.tftp,
      http: bound.http,
    },
    'rack workers running',
  );

  return {
    pids: () => pool.pids(),
    ports: () => ({ ...bound }),
    async collect(timeoutMs = 3000) {
      return Promise.all(
        pool.slots.map(async (slot): Promise<WorkerSnapshot> => {
          const t = tally(slot.index);
          const child = slot.child;
          let fresh: WorkerStats | null = null;
          if (child?.connected && slot.ready) {
            const id = nextId++;
            fresh = await new Promise<WorkerStats | null>((resolve) => {
              const timer = setTimeout(() => {
                waiting.delete(id);
                resolve(null);
              }, timeoutMs);
              waiting.set(id, (m) => {
                clearTimeout(timer);
                waiting.delete(id);
                resolve(m.stats);
              });
              pool.send(child, { kiln: 'rack-stats-request', id } satisfies MainToWorker);
            });
            // The worker may have died while we waited: its figures then already sit in base.
            if (fresh && slot.child === child) t.last = fresh;
            else fresh = null;
          }
          const current = fresh ?? t.last;
          return {
            worker: slot.index,
            stats: current ? addStats(t.base, current) : t.base,
            up: fresh !== null,
            restarts: slot.restarts,
          };
        }),
      );
    },
    stop: () => pool.stop(),
  };
}
