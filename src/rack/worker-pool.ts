import { type ChildProcess, fork } from 'node:child_process';
import type { Config } from '../config/schema.js';
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

interface Slot {
  index: number;
  child: ChildProcess | null;
  ready: boolean;
  /** Consecutive quick crashes, for the backoff. */
  crashes: number;
  restarts: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Counters of this slot's earlier (dead) workers. */
  base: WorkerStats;
  /** The current worker's last answer. */
  last: WorkerStats | null;
}

/** Backoff after a crash: 100 ms, doubling per quick crash in a row, at most 10 s. */
export function rackRestartDelayMs(crashes: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, crashes - 1));
}
/** A worker that ran this long before dying is not crash-looping. */
const STABLE_MS = 30_000;

export async function startRackWorkers(opts: RackWorkerPoolOptions): Promise<RackWorkerPool> {
  const { config, logger, resolver } = opts;
  const script = opts.workerCommand?.script ?? process.argv[1]!;
  const baseArgs = opts.workerCommand?.args ?? ['__rack-worker'];
  const slots: Slot[] = [];
  // Port 0 (tests) means "any": the first worker picks, the others join the port it got.
  const ports = { tftp: config.rack.tftp.port, http: config.rack.http.port };
  const bound: { tftp: number | null; http: number | null } = { tftp: null, http: null };
  let stopping = false;
  let nextId = 1;
  const waiting = new Map<number, (m: Extract<WorkerToMain, { kiln: 'rack-stats' }>) => void>();

  const send = (child: ChildProcess, m: MainToWorker) => {
    if (child.connected) child.send(m, undefined, undefined, () => {});
  };

  const reportListen = (slot: Slot, what: 'TFTP' | 'Boot HTTP', r: ListenResult | null) => {
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
      (source) => send(child, { kiln: 'rack-resolved', id, source }),
      (err: unknown) => send(child, { kiln: 'rack-resolved', id, error: errorForWire(err) }),
    );
  };

  const spawn = (slot: Slot, onReady?: (ok: boolean) => void) => {
    slot.startedAt = Date.now();
    slot.ready = false;
    const child = fork(script, [...baseArgs, String(slot.index)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    slot.child = child;
    child.on('message', (m: unknown) => {
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
          slot.ready = true;
          reportListen(slot, 'TFTP', msg.tftp);
          reportListen(slot, 'Boot HTTP', msg.http);
          if (msg.tftp?.port !== undefined) bound.tftp = ports.tftp = msg.tftp.port;
          if (msg.http?.port !== undefined) bound.http = ports.http = msg.http.port;
          logger.info(
            { worker: slot.index, pid: child.pid, tftp: msg.tftp?.port, http: msg.http?.port },
            'rack worker ready',
          );
          onReady?.(true);
          onReady = undefined;
          return;
      }
    });
    child.on('error', (err) =>
      logger.error({ err: describeError(err), worker: slot.index }, 'rack worker process error'),
    );
    child.once('exit', (code, signal) => {
      slot.child = null;
      slot.ready = false;
      // Its counters so far stay in the totals (up to its last answer).
      if (slot.last) slot.base = addStats(slot.base, slot.last);
      slot.last = null;
      onReady?.(false);
      onReady = undefined;
      if (stopping) return;
      slot.crashes = Date.now() - slot.startedAt > STABLE_MS ? 1 : slot.crashes + 1;
      slot.restarts++;
      const delay = rackRestartDelayMs(slot.crashes);
      logger.error(
        { worker: slot.index, pid: child.pid, code, signal, restart_in_ms: delay },
        'rack worker died; restarting',
      );
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined;
        if (!stopping) spawn(slot);
      }, delay);
    });
    send(child, {
      kiln: 'rack-start',
      index: slot.index,
      config,
      tftpPort: ports.tftp,
      httpPort: ports.http,
    });
  };

  const newSlot = (index: number): Slot => {
    const slot: Slot = {
      index,
      child: null,
      ready: false,
      crashes: 0,
      restarts: 0,
      startedAt: 0,
      restartTimer: undefined,
      base: { tftp: null, http: null },
      last: null,
    };
    slots.push(slot);
    return slot;
  };
  // A worker that neither reports nor dies must not hold the whole rack's start: it keeps its slot
  // (and may still report later), and start-up goes on without it.
  const started = (slot: Slot) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        logger.error(
          { worker: slot.index, pid: slot.child?.pid },
          'rack worker not ready in time; going on without it',
        );
        resolve(false);
      }, opts.readyTimeoutMs ?? 60_000);
      spawn(slot, (ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
    });

  const first = await started(newSlot(1));
  const rest = await Promise.all(Array.from({ length: opts.count - 1 }, (_, i) => started(newSlot(i + 2))));
  const ready = [first, ...rest].filter(Boolean).length;
  logger.info(
    { workers: opts.count, ready, pids: slots.map((s) => s.child?.pid), tftp: bound.tftp, http: bound.http },
    'rack workers running',
  );

  return {
    pids() {
      const m = new Map<number, number>();
      for (const s of slots) if (s.child?.pid !== undefined) m.set(s.index, s.child.pid);
      return m;
    },
    ports: () => ({ ...bound }),
    async collect(timeoutMs = 3000) {
      return Promise.all(
        slots.map(async (slot): Promise<WorkerSnapshot> => {
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
              send(child, { kiln: 'rack-stats-request', id });
            });
            // The worker may have died while we waited: its figures then already sit in base.
            if (fresh && slot.child === child) slot.last = fresh;
            else fresh = null;
          }
          const current = fresh ?? slot.last;
          return {
            worker: slot.index,
            stats: current ? addStats(slot.base, current) : slot.base,
            up: fresh !== null,
            restarts: slot.restarts,
          };
        }),
      );
    },
    async stop() {
      stopping = true;
      await Promise.all(
        slots.map((s) => {
          if (s.restartTimer) clearTimeout(s.restartTimer);
          const child = s.child;
          if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
          return new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            // The worker may be exiting already (a terminal's Ctrl-C reaches it too).
            const fallback = () => child.kill('SIGTERM');
            if (child.connected)
              child.send({ kiln: 'rack-stop' } satisfies MainToWorker, (err) => err && fallback());
            else fallback();
            const t = setTimeout(() => child.kill('SIGKILL'), opts.stopTimeoutMs ?? 15_000);
            t.unref();
          });
        }),
      );
    },
  };
}
