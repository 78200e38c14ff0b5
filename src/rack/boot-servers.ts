import { isIPv6 } from 'node:net';
import type { Config } from '../config/schema.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { closeFd, reusePortSocket } from '../native/index.js';
import { BootHttpServer } from '../net/boot-http-server.js';
import type { BootResolver } from '../net/boot-source.js';
import { startTftpServer, type TftpServer } from '../net/tftp-server.js';
import { countHttp } from './rack-metrics.js';
import type { ListenResult, WorkerStats } from './worker-ipc.js';

export interface BootServers {
  /** What binding TFTP gave (null: TFTP disabled). */
  tftp: ListenResult | null;
  http: ListenResult;
  stats(): WorkerStats;
  /** Stops both; HTTP downloads in flight get `graceMs` to finish. */
  stop(graceMs?: number): Promise<void>;
}

function failure(err: unknown): ListenResult {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return {
    error: { ...(typeof code === 'string' ? { code: code.slice(0, 64) } : {}), message: describeError(err) },
  };
}

/** A failed ListenResult as the Error explainListenError reads (`code`, `message`). */
export function listenError(r: ListenResult): NodeJS.ErrnoException {
  return Object.assign(
    new Error(r.error?.message ?? 'unknown error'),
    r.error?.code ? { code: r.error.code } : {},
  );
}

/**
 * The rack's TFTP and boot HTTP servers in this process, both asking `resolver`. With `shared`
 * (rack workers) each binds with SO_REUSEPORT through the native addon so N processes hold the
 * same ports and the kernel spreads clients over them; otherwise they bind the ordinary way. A
 * port that cannot be bound is reported in the result, and the other server still runs.
 */
export async function startBootServers(opts: {
  config: Config;
  logger: Logger;
  resolver: BootResolver;
  tftpPort: number;
  httpPort: number;
  shared: boolean;
}): Promise<BootServers> {
  const { config, logger, resolver, shared } = opts;
  const t = config.rack.tftp;

  let tftp: TftpServer | null = null;
  let tftpResult: ListenResult | null = null;
  if (t.enabled) {
    let fd: number | undefined;
    try {
      if (shared)
        fd = reusePortSocket({ type: isIPv6(t.host) ? 'udp6' : 'udp4', host: t.host, port: opts.tftpPort });
      tftp = await startTftpServer({
        host: t.host,
        port: opts.tftpPort,
        ...(fd !== undefined ? { fd } : {}),
        logger: logger.child({ part: 'tftp' }),
        resolver,
        timeoutMs: t.timeout_ms,
        retries: t.retries,
      });
      fd = undefined;
      tftpResult = { port: tftp.address().port };
    } catch (err) {
      // The socket never became the server's: do not leak it.
      if (fd !== undefined) closeFd(fd);
      tftpResult = failure(err);
    }
  }

  const http = new BootHttpServer({ resolver, logger: logger.child({ part: 'boot-http' }) });
  const httpStats = countHttp(http.server);
  let httpResult: ListenResult;
  try {
    const a = await http.start({ host: config.rack.http.host, port: opts.httpPort, reusePort: shared });
    if (shared && a.mode !== 'native') {
      // Without the addon's socket another worker would fail with EADDRINUSE; say why here.
      logger.warn({ mode: a.mode }, 'boot http port is not shared (SO_REUSEPORT unavailable)');
    }
    httpResult = { port: a.port };
  } catch (err) {
    httpResult = failure(err);
  }

  return {
    tftp: tftpResult,
    http: httpResult,
    stats: () => ({
      tftp: tftp ? tftp.stats() : null,
      http: httpResult.port !== undefined ? httpStats() : null,
    }),
    async stop(graceMs = 5_000) {
      await Promise.all([tftp?.close(), http.close(graceMs)]);
    },
  };
}
