// Boot-file HTTP benchmark: kiln with sendfile, kiln with the stream fallback, and nginx (sendfile
// on, one worker), each serving the same file on loopback to 1 and to N concurrent curl clients.
// Reports throughput and the server's CPU seconds per GB (utime+stime from /proc/<pid>/stat), and
// both as ratios against nginx measured in the same run. Servers are pinned to CPU 0, clients to
// CPU 1, so each server gets one core and the clients never steal it.
// Run through scripts/bench/http.sh, which makes the file and bounds the time.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const [file, tmp] = process.argv.slice(2) as [string, string];
const size = Number(process.env.BENCH_FILE_BYTES);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const conc = Number(process.env.BENCH_CONCURRENCY ?? 50);
// Each of the N concurrent clients fetches this many bytes (a Range at its own offset), so the
// concurrent row moves N × this rather than N × the file: bounded time on a shared machine.
const perClient = Number(process.env.BENCH_PER_CLIENT_BYTES ?? 128 * 1024 * 1024);
const CLK_TCK = 100;
const children = new Set<ChildProcess>();

function cleanup(): void {
  for (const c of children)
    if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of the command name: utime is field 14, stime 15 (1-based).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function startServer(
  cmd: string[],
  readyRe: RegExp | null,
  port?: number,
): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn('taskset', ['-c', '0', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = readyRe?.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.stderr!.on('data', (d: Buffer) => {
      err += d;
    });
    proc.on('exit', (code) => reject(new Error(`${cmd.join(' ')} exited ${code}: ${err}`)));
    if (!readyRe && port) {
      // nginx prints nothing when ready: poll the port with curl.
      const deadline = Date.now() + 10_000;
      const poll = () => {
        const c = spawn('curl', ['-s', '-o', '/dev/null', '-r', '0-0', `http://127.0.0.1:${port}/file`]);
        c.on('close', (code) => {
          if (code === 0) resolve({ proc, port });
          else if (Date.now() > deadline) reject(new Error(`nginx did not start: ${err}`));
          else setTimeout(poll, 50);
        });
      };
      poll();
    }
  });
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  process.kill(proc.pid!, 'SIGTERM');
  const t = setTimeout(() => proc.pid && process.kill(proc.pid, 'SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
  children.delete(proc);
}

function runCurl(url: string, range?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [
      '-c',
      '1',
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      ...(range ? ['-r', range] : []),
      url,
    ];
    const c = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => {
      out += d;
    });
    c.stderr!.on('data', (d: Buffer) => {
      err += d;
    });
    c.on('close', (code) => {
      children.delete(c);
      if (code === 0) resolve(Number(out));
      else reject(new Error(`curl exited ${code}: ${err}`));
    });
  });
}

interface Sample {
  bytes: number;
  seconds: number;
  cpu: number;
}

async function measure(pid: number, port: number, clients: number): Promise<Sample> {
  const url = `http://127.0.0.1:${port}/file`;
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  let jobs: Promise<number>[];
  if (clients === 1) {
    jobs = [runCurl(url)];
  } else {
    const span = Math.min(perClient, size);
    jobs = Array.from({ length: clients }, (_, i) => {
      const start = Math.floor(((size - span) * i) / Math.max(1, clients - 1));
      return runCurl(url, `${start}-${start + span - 1}`);
    });
  }
  const got = await Promise.all(jobs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const bytes = got.reduce((a, b) => a + b, 0);
  const expected = clients === 1 ? size : clients * Math.min(perClient, size);
  if (bytes !== expected) throw new Error(`received ${bytes} bytes, expected ${expected}`);
  return { bytes, seconds, cpu };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Row {
  server: string;
  clients: number;
  gbps: number;
  cpuPerGB: number;
}

interface Target {
  name: string;
  proc: ChildProcess;
  port: number;
}

/**
 * Rounds interleave the servers (nginx, kiln sendfile, kiln stream, nginx, ...) so that load from
 * elsewhere on the machine falls on all of them alike; each figure is the median over the rounds.
 */
async function bench(targets: Target[]): Promise<Row[]> {
  // Warm the page cache and each server once; not measured.
  for (const t of targets) await measure(t.proc.pid!, t.port, 1);
  const rows: Row[] = [];
  for (const clients of [1, conc]) {
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
    for (let i = 0; i < runs; i++) {
      for (const t of targets) samples.get(t.name)!.push(await measure(t.proc.pid!, t.port, clients));
    }
    for (const t of targets) {
      const ss = samples.get(t.name)!;
      rows.push({
        server: t.name,
        clients,
        gbps: median(ss.map((s) => s.bytes / 1e9 / s.seconds)),
        cpuPerGB: median(ss.map((s) => s.cpu / (s.bytes / 1e9))),
      });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const ngDir = join(tmp, 'nginx');
  await mkdir(join(ngDir, 'www'), { recursive: true });
  const ngPort = 20000 + Math.floor(Math.random() * 20000);
  // One nginx process (no master, one worker's worth) against one Node process: like for like.
  writeFileSync(
    join(ngDir, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${ngDir}/nginx.pid;
error_log ${ngDir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 15;
  client_body_temp_path ${ngDir}/body;
  proxy_temp_path ${ngDir}/proxy;
  fastcgi_temp_path ${ngDir}/fastcgi;
  uwsgi_temp_path ${ngDir}/uwsgi;
  scgi_temp_path ${ngDir}/scgi;
  server {
    listen 127.0.0.1:${ngPort};
    location = /file { alias ${file}; default_type application/octet-stream; }
  }
}
`,
  );
  const kiln = (mode: string) =>
    startServer(
      [process.execPath, '--import', 'tsx', 'scripts/bench/http-kiln-server.ts', file, mode],
      /ready (\d+)/,
    );
  const targets: Target[] = [];
  let rows: Row[];
  try {
    const ng = await startServer(
      ['nginx', '-e', join(ngDir, 'error.log'), '-p', ngDir, '-c', join(ngDir, 'nginx.conf')],
      null,
      ngPort,
    );
    targets.push({ name: 'nginx (sendfile on)', ...ng });
    targets.push({ name: 'kiln sendfile', ...(await kiln('sendfile')) });
    targets.push({ name: 'kiln stream (1 MiB)', ...(await kiln('stream')) });
    rows = await bench(targets);
  } finally {
    for (const t of targets) await stopServer(t.proc);
  }

  const ref = (clients: number) => rows.find((r) => r.server.startsWith('nginx') && r.clients === clients)!;
  console.log(
    `\nHTTP boot files: ${(size / 2 ** 30).toFixed(2)} GiB file, loopback, server on CPU 0, curl on CPU 1, median of ${runs}`,
  );
  console.log(
    `(${conc} clients: each fetches ${(Math.min(perClient, size) / 2 ** 20).toFixed(0)} MiB at its own offset)\n`,
  );
  console.log('server                 clients   GB/s   CPU s/GB   throughput×nginx   CPU/GB×nginx');
  for (const r of rows) {
    const n = ref(r.clients);
    console.log(
      `${r.server.padEnd(22)} ${String(r.clients).padStart(7)} ${r.gbps.toFixed(2).padStart(6)} ${r.cpuPerGB
        .toFixed(3)
        .padStart(
          10,
        )} ${(r.gbps / n.gbps).toFixed(2).padStart(18)} ${(r.cpuPerGB / n.cpuPerGB).toFixed(2).padStart(14)}`,
    );
  }
  console.log('\ntargets: kiln sendfile ≥ 0.95× nginx throughput and ≤ 1.1× its CPU per GB');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
