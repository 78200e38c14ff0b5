import { describeError, KilnError } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { firstParentMessage, forkedByParent, onStopSignals } from '../lib/pool-child.js';
import { configureNative } from '../native/index.js';
import type { BootRequest, BootResolver, BootSource } from '../net/boot-source.js';
import { type BootServers, startBootServers } from './boot-servers.js';
import {
  MAX_PATH,
  type MainToWorker,
  parseMainMessage,
  remoteError,
  type WorkerToMain,
} from './worker-ipc.js';

/**
 * Entry of a forked rack worker (`kiln __rack-worker <n>`, see worker-pool.ts): TFTP and boot HTTP
 * on ports shared with the other workers (SO_REUSEPORT), every path resolved by the main process.
 * The main process sends the validated config; the worker reports `rack-ready` with what it could
 * bind, drains on `rack-stop`/SIGTERM, and exits when the main process goes away.
 */

/** Longer than the booter's own GetBootConfig timeout (15 s), so the region's answer decides. */
const RESOLVE_TIMEOUT_MS = 30_000;

type Start = Extract<MainToWorker, { kiln: 'rack-start' }>;

function send(m: WorkerToMain): void {
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
}

/** A BootResolver that asks the main process over IPC. */
class MainProcessResolver implements BootResolver {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (s: BootSource | null) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  constructor(private readonly logger: Logger) {}

  resolve(req: BootRequest): Promise<BootSource | null> {
    if (req.path.length > MAX_PATH) return Promise.resolve(null);
    if (!process.connected) {
      return Promise.reject(new KilnError('KILN_ERR_RACK_MAIN_GONE', 'the rack main process is gone'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new KilnError(
            'KILN_ERR_TIMEOUT',
            `the rack main process did not resolve ${req.path.slice(0, 200)}`,
          ),
        );
      }, RESOLVE_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      send({ kiln: 'rack-resolve', id, req });
    });
  }

  answered(m: Extract<MainToWorker, { kiln: 'rack-resolved' }>): void {
    const p = this.pending.get(m.id);
    if (!p) {
      this.logger.debug({ id: m.id }, 'late answer from the rack main process dropped');
      return;
    }
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if ('error' in m) p.reject(remoteError(m.error));
    else p.resolve(m.source);
  }

  failAll(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new KilnError('KILN_ERR_RACK_MAIN_GONE', 'the rack worker is stopping'));
    }
    this.pending.clear();
  }
}

export async function run(_ctx: { args: string[]; configFile: string | undefined }): Promise<number> {
  if (!forkedByParent('__rack-worker', 'rack')) return 2;
  const start = await firstParentMessage((m): Start | null => {
    try {
      const msg = parseMainMessage(m);
      return msg?.kiln === 'rack-start' ? msg : null;
    } catch (err) {
      process.stderr.write(`kiln rack worker: ${describeError(err)}\n`);
      return null;
    }
  }, 'the rack main process went away before sending the config');
  const { config, index } = start;
  process.title = `kiln-rack: worker ${index}`;
  const logger = createLogger({ level: config.log.level, name: 'kiln-rack' }).child({ worker_index: index });
  configureNative({ enabled: config.native.enabled });

  const resolver = new MainProcessResolver(logger);
  let servers: BootServers | null = null;
  let stopRequested: (() => void) | null = null;
  const stopped = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });
  const onMessage = (m: unknown) => {
    let msg: MainToWorker | null;
    try {
      msg = parseMainMessage(m);
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'malformed message from the rack main process dropped');
      return;
    }
    if (!msg) return;
    if (msg.kiln === 'rack-resolved') resolver.answered(msg);
    else if (msg.kiln === 'rack-stats-request') {
      const stats = servers?.stats() ?? { tftp: null, http: null };
      send({ kiln: 'rack-stats', id: msg.id, stats });
    } else if (msg.kiln === 'rack-stop') stopRequested?.();
  };
  process.on('message', onMessage);
  onStopSignals(() => stopRequested?.());

  servers = await startBootServers({
    config,
    logger,
    resolver,
    tftpPort: start.tftpPort,
    httpPort: start.httpPort,
    shared: true,
  });
  send({ kiln: 'rack-ready', index, tftp: servers.tftp, http: servers.http });

  await stopped;
  logger.info('rack worker stopping');
  // Without the main process no lookup can be answered: fail them now rather than at the deadline.
  if (!process.connected) resolver.failAll();
  await servers.stop();
  resolver.failAll();
  process.off('message', onMessage);
  // IPC keeps the event loop alive; this worker is done.
  if (process.connected) process.disconnect();
  return 0;
}
