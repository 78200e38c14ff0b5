import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/lib/logger.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';
import { importEphemeralImage, sha256 } from '../helpers/images.js';
import { highPort, waitFor } from '../region/helpers.js';

/**
 * A real `kiln all` with two rack workers: region (one worker) and rack main process in one
 * program, TFTP and boot HTTP in two `kiln-rack: worker N` processes sharing their ports with
 * SO_REUSEPORT. tftp-hpa and curl fetch the iPXE loader and a per-MAC script many times; /metrics
 * (per-worker counters) shows both workers served. A worker killed with SIGKILL comes back and
 * serving goes on; SIGTERM stops every process.
 */

const MAIN = join(import.meta.dirname, '../../src/main.ts');
const LOADER = '/usr/lib/ipxe/undionly.kpxe';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

async function curl(url: string): Promise<{ status: number; body: Buffer }> {
  // --no-keepalive is moot (one request per process); a new process is a new connection, so the
  // kernel's SO_REUSEPORT hash picks a worker each time.
  const r = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', url]);
  assert.equal(r.code, 0, `curl ${url}: ${r.stderr}`);
  const nl = r.stdout.lastIndexOf(10);
  return { status: Number(r.stdout.subarray(nl + 1).toString()), body: r.stdout.subarray(0, nl) };
}

async function tftpGet(port: number, remote: string, local: string): Promise<Buffer> {
  rmSync(local, { force: true });
  const r = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', remote, local]);
  assert.equal(r.code, 0, `tftp get ${remote}: ${r.stderr}`);
  return readFileSync(local);
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function titleOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!.trim();
  } catch {
    return '';
  }
}

function rackWorkers(mainPid: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const c of childrenOf(mainPid)) {
    const t = /^kiln-rack: worker (\d+)$/.exec(titleOf(c));
    if (t) m.set(Number(t[1]), c);
  }
  return m;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `name{labels} value` lines of a Prometheus text page, as label-string → value per metric. */
function metric(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('kiln all with rack.workers=2: both workers serve TFTP and HTTP, a killed worker comes back, SIGTERM stops all', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-rack-workers-'));
  const httpPort = highPort();
  let kiln: ChildProcess | undefined;
  const seen = new Set<number>();
  t.after(() => {
    if (kiln?.pid && kiln.exitCode === null && kiln.signalCode === null) kiln.kill('SIGKILL');
    for (const pid of seen) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  const lines: string[] = [];
  kiln = spawn(process.execPath, [...process.execArgv, MAIN, 'all'], {
    env: {
      ...process.env,
      KILN_DATA_DIR: dataDir,
      KILN_LOG_LEVEL: 'info',
      KILN_REGION_WORKERS: '1',
      KILN_REGION_HTTP_HOST: '127.0.0.1',
      KILN_REGION_RPC_HOST: '127.0.0.1',
      KILN_REGION_HTTP_PORT: String(httpPort),
      KILN_REGION_RPC_PORT: String(httpPort + 1),
      KILN_RACK_REGION_URLS: `http://127.0.0.1:${httpPort}`,
      KILN_RACK_WORKERS: '2',
      KILN_RACK_DHCP_ENABLED: 'false',
      KILN_RACK_TFTP_HOST: '127.0.0.1',
      KILN_RACK_TFTP_PORT: String(httpPort + 2),
      KILN_RACK_HTTP_HOST: '127.0.0.1',
      KILN_RACK_HTTP_PORT: String(httpPort + 3),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  kiln.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const mainPid = kiln.pid!;
  seen.add(mainPid);
  const exited = new Promise<number | null>((resolve) => kiln!.once('exit', (code) => resolve(code)));

  const early = exited.then((code) => {
    throw new Error(`kiln all exited early with ${code}`);
  });
  early.catch(() => {});
  const running = await Promise.race([
    early,
    waitFor(
      'the rack workers to run',
      () => {
        for (const l of lines) {
          if (!l.includes('rack workers running')) continue;
          return JSON.parse(l) as { ready: number; tftp: number; http: number; pids: number[] };
        }
        return null;
      },
      60_000,
    ),
  ]);
  assert.equal(running.ready, 2);
  assert.deepEqual([running.tftp, running.http], [httpPort + 2, httpPort + 3]);
  const base = `http://127.0.0.1:${running.http}`;
  const workers = rackWorkers(mainPid);
  assert.deepEqual([...workers.keys()].sort(), [1, 2], 'two processes titled kiln-rack: worker N');
  for (const pid of workers.values()) seen.add(pid);

  // An image in the region, so an unknown MAC's enlistment script names a kernel and an initrd.
  const region = `http://127.0.0.1:${httpPort}`;
  const db = openRegionDatabase(dataDir, silentLogger);
  const key = createApiKey(db, 'rack-workers-test').key;
  db.close();
  const kernel = randomBytes(300_000);
  const initrd = randomBytes(120_000);
  await importEphemeralImage(region, key, kernel, initrd);
  // The main process syncs the cache; the workers serve it (the path comes from the main process).
  const kernelUrl = `${base}/images/${sha256(kernel)}/vmlinuz`;
  await waitFor('the kernel in the rack cache', async () => (await curl(kernelUrl)).status === 200, 30_000);

  const loader = readFileSync(LOADER);
  const mac = '52-54-00-4a-11-07';
  const local = join(dataDir, 'fetched');
  const fetchAll = async () => {
    assert.ok((await tftpGet(running.tftp, 'undionly.kpxe', local)).equals(loader), 'TFTP loader bytes');
    const tftpScript = (await tftpGet(running.tftp, `boot/${mac}.ipxe`, local)).toString();
    assert.match(tftpScript, /^#!ipxe/);
    assert.ok(tftpScript.includes(`/images/${sha256(kernel)}/vmlinuz`), 'script names the kernel');
    const httpLoader = await curl(`${base}/undionly.kpxe`);
    assert.equal(httpLoader.status, 200);
    assert.ok(httpLoader.body.equals(loader), 'HTTP loader bytes');
    const httpScript = await curl(`${base}/boot/${mac}.ipxe`);
    assert.equal(httpScript.status, 200);
    assert.ok(httpScript.body.toString().includes(`/images/${sha256(initrd)}/initrd.img`));
    const k = await curl(kernelUrl);
    assert.ok(k.body.equals(kernel), 'kernel bytes');
  };
  const servedByBoth = async (): Promise<string | null> => {
    const page = (await curl(`${base}/metrics`)).body.toString();
    for (const w of ['1', '2']) {
      if (!(Number(metric(page, 'kiln_rack_tftp_transfers_total', `worker="${w}",result="completed"`)) > 0))
        return null;
      if (!(Number(metric(page, 'kiln_rack_http_requests_total', `worker="${w}",code="200"`)) > 0))
        return null;
    }
    return page;
  };

  // The kernel's hash spreads clients over the two sockets; keep fetching until each worker has served.
  for (let i = 0; i < 8; i++) await fetchAll();
  const page = await waitFor(
    'both workers to have served TFTP and HTTP',
    async () => {
      const p = await servedByBoth();
      if (!p) await fetchAll();
      return p;
    },
    120_000,
  );
  assert.equal(metric(page, 'kiln_rack_worker_up', 'worker="1"'), 1);
  assert.equal(metric(page, 'kiln_rack_worker_up', 'worker="2"'), 1);
  const bytes =
    Number(metric(page, 'kiln_rack_http_sent_bytes_total', 'worker="1"')) +
    Number(metric(page, 'kiln_rack_http_sent_bytes_total', 'worker="2"'));
  assert.ok(bytes >= 8 * (loader.length + kernel.length), `HTTP bytes counted (${bytes})`);

  // The unknown MAC became a NEW machine in the region.
  const machines = (await (
    await fetch(`${region}/api/v1/machines`, { headers: { authorization: `Bearer ${key}` } })
  ).json()) as { items: Array<{ status: string; boot_mac?: string }> };
  assert.equal(machines.items.length, 1);
  assert.equal(machines.items[0]!.status, 'NEW');

  // kill -9 one worker: the main process starts another in its slot and serving goes on.
  const victim = workers.get(1)!;
  process.kill(victim, 'SIGKILL');
  const replacement = await waitFor('worker 1 to be replaced', () => {
    const pid = rackWorkers(mainPid).get(1);
    return pid !== undefined && pid !== victim ? pid : null;
  });
  seen.add(replacement);
  await waitFor('the new worker to report in', async () => {
    const p = (await curl(`${base}/metrics`)).body.toString();
    return metric(p, 'kiln_rack_worker_restarts_total', 'worker="1"') === 1 &&
      metric(p, 'kiln_rack_worker_up', 'worker="1"') === 1
      ? p
      : null;
  });
  for (let i = 0; i < 6; i++) await fetchAll();
  const after = (await curl(`${base}/metrics`)).body.toString();
  // Counters survive the restart: the dead worker's figures stay in the totals.
  assert.ok(
    Number(metric(after, 'kiln_rack_tftp_transfers_total', 'worker="1",result="completed"')) >=
      Number(metric(page, 'kiln_rack_tftp_transfers_total', 'worker="1",result="completed"')),
  );
  assert.equal(workers.get(2), rackWorkers(mainPid).get(2), 'the other worker was left alone');

  // SIGTERM: the workers drain and exit, then the main process.
  const all = [...rackWorkers(mainPid).values()];
  kiln.kill('SIGTERM');
  assert.equal(await exited, 0);
  await waitFor('every rack worker to be gone', () => all.every((pid) => !alive(pid)), 20_000);
  assert.ok(
    lines.some((l) => l.includes('rack worker stopping')),
    'workers logged their drain',
  );
});
