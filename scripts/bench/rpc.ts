/**
 * RPC and region process benchmarks (issue 3). Run: npm run bench:rpc  (about 1–2 minutes)
 *   1. calls/s over one connection with 1, 16, 256 calls in flight, plain TCP and TLS
 *   2. p50/p99 latency at a steady 10k calls/s over TLS
 *   3. time from kill -9 of a region worker to a whole rack again (2 workers)
 *   4. region HTTP requests/s (GET /healthz): 1 worker, 2 workers SO_REUSEPORT, 2 workers cluster
 * No peer RPC server runs here, so 1–3 are absolute figures for this machine; 4 compares kiln's
 * own process models. The server runs in a child process; client and server share the 2 cores
 * with whatever else runs, so expect noise of ±15%.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import { RegionClient } from '../../src/rack/region-client.js';
import { createRegionApp } from '../../src/region/http/app.js';
import { ensureRegionSecrets, readRegionSecrets } from '../../src/region/secrets.js';
import { RpcChannel } from '../../src/rpc/channel.js';
import { Ping } from '../../src/rpc/commands/index.js';
import { FramedConnection } from '../../src/rpc/framed.js';
import { HandlerRegistry } from '../../src/rpc/handlers.js';
import { performHandshake } from '../../src/rpc/handshake.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

// autocannon ships no type declarations: describe the part used here.
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: {
  url: string;
  connections: number;
  duration: number;
}) => Promise<{ requests: { average: number }; latency: { p99: number } }>;

const MAIN = join(import.meta.dirname, '../../src/main.ts');
const mode = process.argv[2];

function regionHandlers(): HandlerRegistry {
  return new HandlerRegistry('region').register(Ping, (a) => ({ echo: a.echo, time: 0 }));
}

async function serveChannel(socket: Socket | TLSSocket, secret: Buffer): Promise<void> {
  const conn = new FramedConnection(socket);
  const hs = await performHandshake(conn, {
    role: 'region',
    secret,
    software: 'bench',
    worker: { id: 'bench:pid=1', host: 'bench', pid: 1 },
  });
  new RpcChannel({ conn, handlers: regionHandlers(), logger: silentLogger, peerVersion: hs.peerVersion });
}

/** Child: plain and TLS RPC servers on ephemeral ports; prints them as JSON. */
async function rpcServerChild(dataDir: string): Promise<void> {
  const s = readRegionSecrets(dataDir);
  const plain = netServer((sock) => {
    sock.setNoDelay(true);
    serveChannel(sock, s.secret).catch(() => sock.destroy());
  });
  const tls = tlsServer({ cert: s.serverCert, key: s.serverKey }, (sock) => {
    sock.setNoDelay(true);
    serveChannel(sock, s.secret).catch(() => sock.destroy());
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  process.send?.({
    plain: (plain.address() as { port: number }).port,
    tls: (tls.address() as { port: number }).port,
  });
}

async function clientChannel(port: number, useTls: boolean, dataDir: string): Promise<RpcChannel> {
  const s = readRegionSecrets(dataDir);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const sock = useTls
      ? tlsConnect({ host: '127.0.0.1', port, ca: s.caCert, checkServerIdentity: () => undefined }, () =>
          resolve(sock),
        )
      : netConnect(port, '127.0.0.1', () => resolve(sock));
    sock.once('error', reject);
  });
  socket.setNoDelay(true);
  const conn = new FramedConnection(socket);
  const hs = await performHandshake(conn, {
    role: 'rack',
    secret: s.secret,
    software: 'bench',
    hostname: 'bench',
  });
  return new RpcChannel({
    conn,
    handlers: new HandlerRegistry('rack'),
    logger: silentLogger,
    peerVersion: hs.peerVersion,
  });
}

async function throughput(ch: RpcChannel, inFlight: number, ms: number): Promise<number> {
  let done = 0;
  const end = Date.now() + ms;
  const lane = async () => {
    while (Date.now() < end) {
      await ch.call(Ping, {});
      done++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, lane));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return done / secs;
}

/** Calls issued on a 1 ms timer at `rate`/s (open loop: a slow answer does not slow the sender). */
async function steadyLatency(
  ch: RpcChannel,
  rate: number,
  ms: number,
): Promise<{ p50: number; p99: number; sent: number }> {
  const lat: number[] = [];
  const inflight: Array<Promise<void>> = [];
  let sent = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((now - start) * rate) / 1000);
      while (sent < due) {
        const t = performance.now();
        inflight.push(ch.call(Ping, {}).then(() => void lat.push(performance.now() - t)));
        sent++;
      }
      if (now - start >= ms) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inflight);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  return { p50: q(0.5), p99: q(0.99), sent };
}

async function waitFor<T>(fn: () => T, timeoutMs: number): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function regionEnv(dataDir: string, http: number, rpc: number, workers: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KILN_DATA_DIR: dataDir,
    KILN_LOG_LEVEL: 'error',
    KILN_REGION_WORKERS: String(workers),
    KILN_REGION_HTTP_HOST: '127.0.0.1',
    KILN_REGION_RPC_HOST: '127.0.0.1',
    KILN_REGION_HTTP_PORT: String(http),
    KILN_REGION_RPC_PORT: String(rpc),
  };
}

async function waitHttp(port: number): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/rpc`);
      const j = (await r.json()) as { eventloops: Record<string, unknown> | null };
      if (j.eventloops) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error('region did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(t);
}

async function killRecovery(dataDir: string, rounds: number): Promise<number[]> {
  const http = 20000 + Math.floor(Math.random() * 40000);
  const region = spawn(process.execPath, [...process.execArgv, MAIN, 'region'], {
    env: regionEnv(dataDir, http, http + 1, 2),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitHttp(http);
    const client = new RegionClient({
      regionUrls: [`http://127.0.0.1:${http}`],
      secret: readRegionSecrets(dataDir).secret,
      dataDir: join(dataDir, 'rack'),
      hostname: 'bench-rack',
      name: null,
      software: 'bench',
      logger: silentLogger,
    });
    client.start();
    await waitFor(() => client.isWhole() && client.connectedWorkers().length === 2, 30_000);
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const [victim] = client.connectedWorkers() as [string];
      const t0 = performance.now();
      process.kill(Number(/pid=(\d+)/.exec(victim)![1]), 'SIGKILL');
      await waitFor(() => {
        const w = client.connectedWorkers();
        return client.isWhole() && w.length === 2 && !w.includes(victim);
      }, 60_000);
      times.push(performance.now() - t0);
      // Let the backoff counters see a stable worker before the next round.
      await new Promise((r) => setTimeout(r, 500));
    }
    await client.stop();
    return times;
  } finally {
    await stopChild(region);
  }
}

async function cannon(port: number, seconds: number): Promise<{ rps: number; p99: number }> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}/healthz`, connections: 50, duration: seconds });
  return { rps: r.requests.average, p99: r.latency.p99 };
}

async function httpKiln(dataDir: string, workers: number, seconds: number) {
  const http = 20000 + Math.floor(Math.random() * 40000);
  const region = spawn(process.execPath, [...process.execArgv, MAIN, 'region'], {
    env: regionEnv(dataDir, http, http + 1, workers),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitHttp(http);
    return await cannon(http, seconds);
  } finally {
    await stopChild(region);
  }
}

/** Node's cluster module (round-robin) running the same region app, for comparison. */
function clusterChild(dataDir: string, port: number, workers: number): void {
  if (cluster.isPrimary) {
    for (let i = 0; i < workers; i++) cluster.fork();
    let ready = 0;
    cluster.on('listening', () => {
      if (++ready === workers) process.send?.('ready');
    });
    process.on('SIGTERM', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.kill();
      process.exit(0);
    });
    return;
  }
  const { config } = loadConfig({ env: { KILN_DATA_DIR: dataDir, KILN_LOG_LEVEL: 'silent' } });
  const db = openRegionDatabase(dataDir, silentLogger);
  createHttpServer(createRegionApp({ config, logger: silentLogger, db }).callback()).listen(
    port,
    '127.0.0.1',
  );
}

async function httpCluster(dataDir: string, seconds: number) {
  const port = 20000 + Math.floor(Math.random() * 40000);
  const child = fork(import.meta.filename, ['cluster', dataDir, String(port), '2'], {
    execArgv: process.execArgv,
  });
  try {
    await new Promise((r) => child.once('message', r));
    return await cannon(port, seconds);
  } finally {
    await stopChild(child);
  }
}

async function mainBench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-bench-rpc-'));
  await ensureRegionSecrets(dataDir, silentLogger);
  openRegionDatabase(dataDir, silentLogger).close();
  const out: string[] = [];
  const say = (s: string) => {
    out.push(s);
    console.log(s);
  };
  say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`);
  const server = fork(import.meta.filename, ['rpc-server', dataDir], { execArgv: process.execArgv });
  try {
    const ports = await new Promise<{ plain: number; tls: number }>((r) =>
      server.once('message', (m) => r(m as never)),
    );
    say('\n1. calls/s over one connection (Ping, 3 s each; targets ≥100k plain pipelined, ≥50k TLS)');
    for (const useTls of [false, true]) {
      const ch = await clientChannel(useTls ? ports.tls : ports.plain, useTls, dataDir);
      for (const n of [1, 16, 256]) {
        const rate = await throughput(ch, n, 3000);
        say(
          `   ${useTls ? 'TLS  ' : 'plain'} in flight ${String(n).padStart(3)}: ${Math.round(rate).toLocaleString('en')} calls/s`,
        );
      }
      if (useTls) {
        await steadyLatency(ch, 10_000, 1000); // warm-up
        const l = await steadyLatency(ch, 10_000, 5000);
        say(
          `\n2. steady 10k calls/s over TLS for 5 s (${l.sent} calls; target p99 < 2 ms): p50 ${l.p50.toFixed(3)} ms, p99 ${l.p99.toFixed(3)} ms`,
        );
      }
      ch.destroy();
    }
  } finally {
    await stopChild(server);
  }

  if (mode === 'rpc') return;
  const times = await killRecovery(dataDir, 3);
  say(
    `\n3. kill -9 of one of 2 workers → rack whole again (target < 5 s): ${times.map((t) => `${(t / 1000).toFixed(2)} s`).join(', ')}`,
  );

  say('\n4. region HTTP GET /healthz, autocannon 50 connections × 5 s (keep-alive)');
  const one = await httpKiln(dataDir, 1, 5);
  say(`   1 worker                 : ${Math.round(one.rps).toLocaleString('en')} req/s, p99 ${one.p99} ms`);
  const two = await httpKiln(dataDir, 2, 5);
  say(
    `   2 workers SO_REUSEPORT   : ${Math.round(two.rps).toLocaleString('en')} req/s, p99 ${two.p99} ms (${(two.rps / one.rps).toFixed(2)}× 1 worker)`,
  );
  const cl = await httpCluster(dataDir, 5);
  say(
    `   2 workers Node cluster   : ${Math.round(cl.rps).toLocaleString('en')} req/s, p99 ${cl.p99} ms (${(cl.rps / one.rps).toFixed(2)}× 1 worker; SO_REUSEPORT/cluster ${(two.rps / cl.rps).toFixed(2)})`,
  );
  rmSync(dataDir, { recursive: true, force: true });
}

if (mode === 'rpc-server') await rpcServerChild(process.argv[3]!);
else if (mode === 'cluster') clusterChild(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
else await mainBench();
// `npm run bench:rpc -- rpc` runs parts 1–2 only.
