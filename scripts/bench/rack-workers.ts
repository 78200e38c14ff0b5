/**
 * Rack worker processes (issue 4): `kiln all` with rack.workers 1 and 2 against atftpd and nginx
 * serving the same first-stage loader (iPXE's undionly.kpxe, ~74 kB) from the same machine.
 *   node --import tsx scripts/bench/rack-workers.ts        (npm run bench:rack-workers, ~30 s)
 *   RACK_BENCH_TRANSFERS=1000 RACK_BENCH_SECONDS=10 ...     (longer runs)
 * Rows:
 *   TFTP  N transfers, 50 atftp clients at a time (blksize 1432, as iPXE asks): wall time; ratio =
 *         atftpd's time / kiln's (≥ 1.00: kiln at least as fast).
 *   HTTP  autocannon, 50 keep-alive connections, GET /undionly.kpxe: requests/s; ratio = kiln / nginx
 *         (nginx: sendfile on, worker_processes 2).
 * Every TFTP path lookup in a worker is one IPC round trip to the main process. Noise: 2 cores
 * shared by server, clients (atftp processes, autocannon in this process) and other work here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const autocannon = createRequire(import.meta.url)('autocannon') as (opts: {
  url: string;
  connections: number;
  duration: number;
}) => Promise<{ requests: { average: number }; non2xx: number; errors: number }>;

const MAIN = join(import.meta.dirname, '../../src/main.ts');
const LOADER = '/usr/lib/ipxe/undionly.kpxe';
const TRANSFERS = Number(process.env.RACK_BENCH_TRANSFERS ?? 500);
const SECONDS = Number(process.env.RACK_BENCH_SECONDS ?? 5);
const PARALLEL = 50;

const work = mkdtempSync(join(tmpdir(), 'kiln-bench-rack-'));
chmodSync(work, 0o755);
const root = join(work, 'root');
const children: ChildProcess[] = [];

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function exec(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.once('exit', (code) => resolve(code ?? 1));
  });
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** N atftp downloads, PARALLEL at a time; returns seconds, and checks every file. */
async function tftpRow(port: number): Promise<number> {
  const want = readFileSync(LOADER);
  let next = 0;
  let bad = 0;
  const started = process.hrtime.bigint();
  const client = async (slot: number) => {
    while (next < TRANSFERS) {
      next++;
      const out = join(work, `out-${slot}`);
      rmSync(out, { force: true });
      const code = await exec('atftp', [
        '--option',
        'blksize 1432',
        '-g',
        '-r',
        'undionly.kpxe',
        '-l',
        out,
        '127.0.0.1',
        String(port),
      ]);
      try {
        if (code !== 0 || !readFileSync(out).equals(want)) bad++;
      } catch {
        bad++;
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, (_, i) => client(i)));
  if (bad > 0) throw new Error(`bench: ${bad} TFTP transfers failed or were corrupted on port ${port}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function httpRow(port: number): Promise<number> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/undionly.kpxe`,
    connections: 50,
    duration: SECONDS,
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`bench: HTTP errors on ${port}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return r.requests.average;
}

async function references(): Promise<{ tftp: number; http: number; stop(): void }> {
  const tftp = await freePort();
  const atftpd = spawn(
    'atftpd',
    [
      '--daemon',
      '--no-fork',
      '--port',
      String(tftp),
      '--bind-address',
      '127.0.0.1',
      '--user',
      'nobody',
      '--group',
      'nogroup',
      '--maxthread',
      '500',
      '--logfile',
      '/dev/null',
      root,
    ],
    { stdio: 'ignore' },
  );
  children.push(atftpd);
  const http = await freePort();
  const conf = join(work, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 2;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${work}/nginx-tmp;
  proxy_temp_path ${work}/nginx-tmp;
  fastcgi_temp_path ${work}/nginx-tmp;
  uwsgi_temp_path ${work}/nginx-tmp;
  scgi_temp_path ${work}/nginx-tmp;
  server { listen 127.0.0.1:${http}; root ${root}; }
}
`,
  );
  const nginx = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(nginx);
  await until(
    'atftpd',
    async () =>
      (await exec('atftp', [
        '-g',
        '-r',
        'undionly.kpxe',
        '-l',
        join(work, 'probe'),
        '127.0.0.1',
        String(tftp),
      ])) === 0,
  );
  await until(
    'nginx',
    async () => (await fetch(`http://127.0.0.1:${http}/undionly.kpxe`).catch(() => null))?.status === 200,
  );
  return {
    tftp,
    http,
    stop() {
      atftpd.kill('SIGTERM');
      nginx.kill('SIGQUIT');
    },
  };
}

async function kiln(workers: number): Promise<{ tftp: number; http: number; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(work, `kiln-${workers}-`));
  const [regionHttp, regionRpc, tftp, http] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const child = spawn(process.execPath, [...process.execArgv, MAIN, 'all'], {
    env: {
      ...process.env,
      KILN_DATA_DIR: dataDir,
      KILN_LOG_LEVEL: 'warn',
      KILN_REGION_WORKERS: '1',
      KILN_REGION_HTTP_HOST: '127.0.0.1',
      KILN_REGION_RPC_HOST: '127.0.0.1',
      KILN_REGION_HTTP_PORT: String(regionHttp),
      KILN_REGION_RPC_PORT: String(regionRpc),
      KILN_RACK_REGION_URLS: `http://127.0.0.1:${regionHttp}`,
      KILN_RACK_WORKERS: String(workers),
      KILN_RACK_DHCP_ENABLED: 'false',
      KILN_RACK_TFTP_HOST: '127.0.0.1',
      KILN_RACK_TFTP_PORT: String(tftp),
      KILN_RACK_HTTP_HOST: '127.0.0.1',
      KILN_RACK_HTTP_PORT: String(http),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  // Every worker is up once /metrics lists them all (or, with one process, once it answers).
  await until(`kiln with ${workers} rack workers`, async () => {
    const res = await fetch(`http://127.0.0.1:${http}/metrics`).catch(() => null);
    if (res?.status !== 200) return false;
    const text = await res.text();
    return workers === 1 || (text.match(/^kiln_rack_worker_up\{[^}]*\} 1$/gm) ?? []).length === workers;
  });
  return {
    tftp,
    http,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  for (const cmd of ['atftp', 'atftpd', 'nginx']) {
    if ((await exec('sh', ['-c', `command -v ${cmd}`])) !== 0)
      throw new Error(`bench: ${cmd} is missing (scripts/test-deps.sh)`);
  }
  mkdirSync(root, { mode: 0o755 });
  copyFileSync(LOADER, join(root, 'undionly.kpxe'));
  chmodSync(join(root, 'undionly.kpxe'), 0o644);
  mkdirSync(join(work, 'nginx-tmp'));

  const ref = await references();
  const refTftp = await tftpRow(ref.tftp);
  const refHttp = await httpRow(ref.http);
  ref.stop();

  const rows: string[] = [];
  rows.push(
    `reference: atftpd ${refTftp.toFixed(2)} s for ${TRANSFERS} transfers; nginx ${refHttp.toFixed(0)} req/s`,
  );
  for (const workers of [1, 2]) {
    const k = await kiln(workers);
    const t = await tftpRow(k.tftp);
    const h = await httpRow(k.http);
    await k.stop();
    rows.push(
      `kiln rack.workers=${workers}: TFTP ${t.toFixed(2)} s (${(refTftp / t).toFixed(2)}x atftpd), ` +
        `HTTP ${h.toFixed(0)} req/s (${(h / refHttp).toFixed(2)}x nginx)`,
    );
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
