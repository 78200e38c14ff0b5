import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import { explainListenError } from '../lib/listen-error.js';
import type { Logger } from '../lib/logger.js';
import { listenReusePort, type ReusePortMode } from '../native/index.js';
import { workerKey } from '../rpc/discovery.js';
import type { HandlerRegistry } from '../rpc/handlers.js';
import { softwareVersion } from '../rpc/version.js';
import { openRegionDatabase } from '../storage/region-db.js';
import {
  deleteRegionWorker,
  expireRegionWorkers,
  heartbeatRegionWorker,
  removeRackConnection,
  upsertRegionWorker,
} from '../storage/region-workers.js';
import { createRegionApp } from './http/app.js';
import { createRegionMetrics } from './http/metrics.js';
import type { RoutePlugin } from './http/plugin.js';
import { aggregatedMetricsRoutes, serveMetricsCollection } from './metrics-ipc.js';
import { type RegionModule, regionModules } from './modules.js';
import { rpcRoutes } from './rpc-routes.js';
import { RegionRpcServer } from './rpc-server.js';
import { createRegionHandlers } from './rpc-service.js';
import { readRegionSecrets } from './secrets.js';

export const HEARTBEAT_MS = 2000;
/** A worker not heard from for this long is dropped from /rpc and the racks API. */
export const WORKER_TTL_MS = 10_000;

export interface RegionWorkerOptions {
  config: Config;
  logger: Logger;
  /** Under a supervisor: /metrics answers for all workers over IPC. */
  supervised?: boolean;
  /** Extra modules (tests); the standard list in modules.ts always runs. */
  modules?: RegionModule[];
  /** Milliseconds in-flight HTTP requests get to finish on stop. */
  drainMs?: number;
}

export interface RegionWorker {
  /** "<host>:pid=<pid>" as /rpc lists it. */
  id: string;
  db: Database.Database;
  handlers: HandlerRegistry;
  rpc: RegionRpcServer | null;
  http: Server | null;
  rpcPort: number | null;
  httpPort: number | null;
  stop(): Promise<void>;
}

/**
 * One region worker: the HTTP app and the RPC server, both on ports shared with the other workers
 * (SO_REUSEPORT), its record + heartbeat in the database. A port that cannot be bound is explained
 * in the log and the rest keeps running.
 */
export async function startRegionWorker(opts: RegionWorkerOptions): Promise<RegionWorker> {
  const { config } = opts;
  const host = hostname();
  const id = workerKey(host, process.pid);
  const logger = opts.logger.child({ worker: id });
  const db = openRegionDatabase(config.data_dir, logger);
  const secrets = readRegionSecrets(config.data_dir);
  const handlers = createRegionHandlers({ db, secret: secrets.secret, workerId: id, logger });
  const metrics = createRegionMetrics(db);
  const plugins: RoutePlugin[] = [];
  let stopCollect: (() => void) | undefined;
  if (opts.supervised) {
    plugins.push(aggregatedMetricsRoutes(metrics.registry));
    stopCollect = serveMetricsCollection(metrics.registry);
  }
  let rpc: RegionRpcServer | null = null;
  plugins.push(rpcRoutes({ db, workerTtlMs: WORKER_TTL_MS, rpc: () => rpc, workerId: id }));

  for (const mod of [...regionModules, ...(opts.modules ?? [])]) {
    await mod({ config, logger, db, handlers, plugins, secret: secrets.secret, rpc: () => rpc });
  }

  const candidate = new RegionRpcServer({
    host: config.region.rpc.host,
    port: config.region.rpc.port,
    secrets,
    worker: { id, host, pid: process.pid },
    handlers,
    logger,
    software: softwareVersion(),
    onLinkClosed: (link) => {
      try {
        removeRackConnection(db, link.peer.connection_id);
      } catch (err) {
        logger.warn({ err }, 'could not drop a closed rack connection record');
      }
    },
  });
  let rpcMode: ReusePortMode | undefined;
  try {
    rpcMode = await candidate.listen();
    rpc = candidate;
  } catch (err) {
    logger.error(explainListenError(err, 'region RPC', config.region.rpc.port, 'region.rpc.port'));
  }

  const app = createRegionApp({ config, logger, db, metrics, plugins });
  let http: Server | null = createServer(app.callback());
  http.keepAliveTimeout = 65_000;
  let httpMode: ReusePortMode | undefined;
  try {
    httpMode = await listenReusePort(http, config.region.http.host, config.region.http.port);
  } catch (err) {
    logger.error(explainListenError(err, 'region HTTP', config.region.http.port, 'region.http.port'));
    http = null;
  }
  const httpAddr = http?.address();
  const httpPort = httpAddr && typeof httpAddr === 'object' ? httpAddr.port : null;
  const rpcPort = rpc ? rpc.address().port : null;

  const record = () => {
    if (rpcPort === null) return;
    upsertRegionWorker(
      db,
      { id, host, pid: process.pid, rpc_addresses: [[config.region.rpc.host, rpcPort]], http_port: httpPort },
      Date.now(),
    );
  };
  record();
  const beat = setInterval(() => {
    try {
      const now = Date.now();
      if (!heartbeatRegionWorker(db, id, now)) record();
      expireRegionWorkers(db, now - WORKER_TTL_MS);
    } catch (err) {
      logger.warn({ err }, 'region worker heartbeat failed');
    }
  }, HEARTBEAT_MS);
  beat.unref();
  logger.info(
    { rpc_port: rpcPort, http_port: httpPort, rpc_listen: rpcMode, http_listen: httpMode },
    'region worker listening',
  );

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      clearInterval(beat);
      stopCollect?.();
      // Leave /rpc first so racks stop looking for this worker.
      try {
        deleteRegionWorker(db, id);
      } catch (err) {
        logger.warn({ err }, 'could not remove this worker from the database');
      }
      const server = http;
      const closing: Array<Promise<void>> = [];
      if (server) {
        closing.push(
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
            const t = setTimeout(() => server.closeAllConnections(), opts.drainMs ?? 10_000);
            t.unref();
          }),
        );
      }
      if (rpc) closing.push(rpc.close());
      await Promise.all(closing);
      db.close();
    })();
    return stopped;
  };
  return { id, db, handlers, rpc, http, rpcPort, httpPort, stop };
}
