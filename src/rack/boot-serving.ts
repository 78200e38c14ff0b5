import type { Config } from '../config/schema.js';
import { explainListenError } from '../lib/listen-error.js';
import type { Logger } from '../lib/logger.js';
import type { NativeStatus } from '../native/index.js';
import type { BootResolver } from '../net/boot-source.js';
import { probePortFree } from '../net/port-probe.js';
import type { LeaseDb } from '../storage/leases.js';
import { listenError, startBootServers } from './boot-servers.js';
import { type RackMetricsSnapshot, withMetrics } from './rack-metrics.js';
import type { WorkerStats } from './worker-ipc.js';
import { type RackWorkerPool, startRackWorkers } from './worker-pool.js';

export interface BootServing {
  /** 'workers' when TFTP and boot HTTP run in `rack.workers` processes, else 'main'. */
  mode: 'main' | 'workers';
  /** The workers, in 'workers' mode. */
  pool: RackWorkerPool | null;
  /** What /metrics shows, gathered now. */
  snapshot(): Promise<RackMetricsSnapshot>;
  stop(): Promise<void>;
}

/**
 * Where the rack's TFTP and boot HTTP run: with `rack.workers` > 1 and the native addon (Node 20
 * cannot share a port without it), in that many worker processes on SO_REUSEPORT sockets, each
 * asking this process's `booter` for every path; otherwise here, as one process. DHCP never moves:
 * its broadcasts would reach every worker. Both ways `/metrics` on the boot HTTP port answers for
 * every process.
 */
export async function startBootServing(opts: {
  config: Config;
  logger: Logger;
  booter: BootResolver;
  native: NativeStatus;
  /** The DHCP lease store, for the lease gauge. */
  leases?: Pick<LeaseDb, 'list'>;
  /** Tests: how to start a worker (default: this program's `__rack-worker`). */
  workerCommand?: { script: string; args: string[] };
}): Promise<BootServing> {
  const { config, logger } = opts;
  const dhcpLeases = (): Record<string, number> | null => {
    if (!opts.leases) return null;
    const by: Record<string, number> = { active: 0, released: 0, declined: 0 };
    for (const l of opts.leases.list()) by[l.state] = (by[l.state] ?? 0) + 1;
    return by;
  };

  const wanted = config.rack.workers;
  if (wanted > 1 && !opts.native.available) {
    logger.warn(
      { wanted, reason: opts.native.reason },
      'SO_REUSEPORT needs the native addon: TFTP and boot HTTP run in the main process (rack.workers ignored)',
    );
  }

  // Workers bind with SO_REUSEPORT, which would silently share a port another program of ours
  // holds; if either port is taken, serve from this process, where a plain bind fails and says so.
  let portsFree = true;
  if (wanted > 1 && opts.native.available) {
    for (const [kind, host, port, on] of [
      ['udp', config.rack.tftp.host, config.rack.tftp.port, config.rack.tftp.enabled],
      ['tcp', config.rack.http.host, config.rack.http.port, true],
    ] as const) {
      if (!on) continue;
      await probePortFree(kind, host, port).catch((err: NodeJS.ErrnoException) => {
        logger.warn({ port, code: err.code }, 'a boot port is already taken: not starting rack workers');
        portsFree = false;
      });
    }
  }

  if (wanted > 1 && opts.native.available && portsFree) {
    let pool: RackWorkerPool | null = null;
    const snapshot = async (): Promise<RackMetricsSnapshot> => {
      const list = pool ? await pool.collect() : [];
      return {
        processes: list.map((w) => ({
          worker: String(w.worker),
          stats: w.stats,
          restarts: w.restarts,
          up: w.up,
        })),
        dhcpLeases: dhcpLeases(),
      };
    };
    pool = await startRackWorkers({
      config,
      logger: logger.child({ part: 'rack-workers' }),
      resolver: withMetrics(opts.booter, snapshot),
      count: wanted,
      ...(opts.workerCommand ? { workerCommand: opts.workerCommand } : {}),
    });
    const p = pool;
    return { mode: 'workers', pool, snapshot, stop: () => p.stop() };
  }

  let stats = (): WorkerStats => ({ tftp: null, http: null });
  const snapshot = async (): Promise<RackMetricsSnapshot> => ({
    processes: [{ worker: 'main', stats: stats() }],
    dhcpLeases: dhcpLeases(),
  });
  const servers = await startBootServers({
    config,
    logger,
    resolver: withMetrics(opts.booter, snapshot),
    tftpPort: config.rack.tftp.port,
    httpPort: config.rack.http.port,
    shared: false,
  });
  stats = servers.stats;
  if (servers.tftp?.error) {
    logger.error(
      { err: servers.tftp.error.message },
      explainListenError(listenError(servers.tftp), 'TFTP', config.rack.tftp.port, 'rack.tftp.port'),
    );
  }
  if (servers.http.error) {
    logger.error(
      { err: servers.http.error.message },
      explainListenError(listenError(servers.http), 'Boot HTTP', config.rack.http.port, 'rack.http.port'),
    );
  }
  return { mode: 'main', pool: null, snapshot, stop: () => servers.stop() };
}
