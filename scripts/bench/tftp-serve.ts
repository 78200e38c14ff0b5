/**
 * Runs kiln's TFTP server over one directory, for the benchmark (scripts/bench/tftp.sh) and for
 * trying clients by hand:
 *   node --import tsx scripts/bench/tftp-serve.ts --root DIR --port N [--host 127.0.0.1]
 *        [--timeout-ms 1000] [--retries 5] [--log-level silent] [--workers 1]
 * Prints "listening <port>" on stdout once bound; SIGTERM closes it and prints its counters.
 *
 * --workers N (N > 1) is the rack's answer to many transfers at once on a multi-core host
 * (rack.workers): N processes each bind the same port with SO_REUSEPORT through the native addon,
 * and the kernel spreads requests across them. This process then only forks them, waits for them,
 * and on SIGTERM sums their counters. Needs the addon (npm run build:native).
 */
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../../src/lib/logger.js';
import { closeFd, nativeStatus, reusePortSocket } from '../../src/native/index.js';
import { fileRootResolver } from '../../src/net/tftp-root-resolver.js';
import { startTftpServer, type TftpStats } from '../../src/net/tftp-server.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'timeout-ms': { type: 'string', default: '1000' },
    retries: { type: 'string', default: '5' },
    'log-level': { type: 'string', default: 'silent' },
    workers: { type: 'string', default: '1' },
    /** Internal: this process is one of the workers, binding with SO_REUSEPORT. */
    'reuse-port': { type: 'boolean', default: false },
  },
});
if (!values.root) {
  console.error('tftp-serve: --root DIR is required');
  process.exit(2);
}
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 1) {
  console.error('tftp-serve: --workers must be a positive integer');
  process.exit(2);
}

if (workers > 1) await runPrimary();
else await runServer();

async function runServer(): Promise<void> {
  let fd: number | undefined;
  if (values['reuse-port']) {
    fd = reusePortSocket({ type: 'udp4', host: values.host, port: Number(values.port) });
  }
  let server: Awaited<ReturnType<typeof startTftpServer>>;
  try {
    server = await startTftpServer({
      host: values.host,
      port: Number(values.port),
      ...(fd !== undefined ? { fd } : {}),
      logger: createLogger({ level: values['log-level'] as LogLevel, destination: process.stderr }),
      resolver: fileRootResolver(values.root!),
      timeoutMs: Number(values['timeout-ms']),
      retries: Number(values.retries),
    });
  } catch (err) {
    if (fd !== undefined) closeFd(fd);
    throw err;
  }
  const port = server.address().port;
  if (process.send) process.send({ listening: port });
  else console.log(`listening ${port}`);
  const stop = async () => {
    await server.close();
    const stats = server.stats();
    if (process.send) process.send({ stats }, () => process.exit(0));
    else {
      console.error(JSON.stringify(stats));
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A worker whose primary died must not linger.
  process.on('disconnect', () => process.exit(0));
}

async function runPrimary(): Promise<void> {
  const native = nativeStatus();
  if (!native.available) {
    console.error(`tftp-serve: --workers needs the native addon (SO_REUSEPORT): ${native.reason}`);
    process.exit(2);
  }
  const children: ReturnType<typeof fork>[] = [];
  const stats: TftpStats[] = [];
  const start = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const args = ['--root', values.root!, '--host', values.host, '--port', String(port)];
      args.push('--timeout-ms', values['timeout-ms'], '--retries', values.retries);
      args.push('--log-level', values['log-level'], '--reuse-port');
      const child = fork(process.argv[1]!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      child.on('message', (m: { listening?: number; stats?: TftpStats }) => {
        if (m.listening !== undefined) resolve(m.listening);
        if (m.stats) stats.push(m.stats);
      });
      child.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
    });
  // The first worker picks the port (when asked for 0); the others join it.
  const port = await start(Number(values.port));
  for (let i = 1; i < workers; i++) await start(port);
  console.log(`listening ${port}`);
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    const sum = stats.reduce<Record<string, number>>((acc, s) => {
      for (const [k, v] of Object.entries(s)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {});
    console.error(JSON.stringify({ workers, startedPerWorker: stats.map((s) => s.started), ...sum }));
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
