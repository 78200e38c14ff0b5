import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Config } from '../../src/config/schema.js';
import { KilnError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import type { BootResolver } from '../../src/net/boot-source.js';
import { PATH_REFUSED } from '../../src/net/tftp-root-resolver.js';
import { startBootServing } from '../../src/rack/boot-serving.js';
import { startRackWorkers } from '../../src/rack/worker-pool.js';
import { testConfig, waitFor } from '../region/helpers.js';

/**
 * startBootServing and the worker pool on their own, with a small fixed resolver in place of the
 * booter (the booter and the region are covered by booter.test.ts and workers.test.ts): which mode
 * runs when, ports picked by the first worker, errors crossing the IPC with their codes.
 */

const MAIN = join(import.meta.dirname, '../../src/main.ts');
const WORKER = { script: MAIN, args: ['__rack-worker'] };
const LOADER = '/usr/lib/ipxe/undionly.kpxe';

/** Serves the loader and a script; refuses `secret` like a path outside the root; fails on `broken`. */
const resolver: BootResolver = {
  async resolve(req) {
    const name = req.path.replace(/^\/+/, '');
    if (name === 'undionly.kpxe') return { kind: 'file', path: LOADER };
    if (name === 'hello.ipxe')
      return { kind: 'content', body: Buffer.from(`#!ipxe\necho ${req.protocol}\n`) };
    if (name === 'secret') throw new KilnError(PATH_REFUSED, 'path refused: outside the served root');
    if (name === 'broken') throw new Error('policy failed');
    return null;
  },
};

function env(workers: number) {
  const e = testConfig(
    { http: 0, rpc: 0 },
    {
      KILN_RACK_TFTP_HOST: '127.0.0.1',
      KILN_RACK_HTTP_HOST: '127.0.0.1',
      KILN_RACK_WORKERS: String(workers),
    },
  );
  const c = e.config as unknown as { rack: { tftp: { port: number }; http: { port: number } } };
  // Port 0 is refused in config files but fine here: the first worker picks, the others join it.
  c.rack.tftp.port = 0;
  c.rack.http.port = 0;
  return e;
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination: dest }) };
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

test('without the native addon rack.workers is ignored with a reason, and this process serves', async (t) => {
  const e = env(2);
  const { lines, logger } = capture();
  const serving = await startBootServing({
    config: e.config,
    logger,
    booter: resolver,
    native: { available: false, reason: 'disabled by KILN_NO_NATIVE' },
  });
  t.after(async () => {
    await serving.stop();
    e.cleanup();
  });
  assert.equal(serving.mode, 'main');
  assert.ok(
    lines.some(
      (l) =>
        l.level === 40 &&
        String(l.msg).includes('SO_REUSEPORT needs the native addon') &&
        l.reason === 'disabled by KILN_NO_NATIVE',
    ),
  );
  const listening = lines.find((l) => l.msg === 'boot http listening');
  const port = Number(listening?.port);
  const r = await run('curl', ['-sS', `http://127.0.0.1:${port}/hello.ipxe`]);
  assert.equal(r.stdout, '#!ipxe\necho http\n');
  const metrics = await run('curl', ['-sS', `http://127.0.0.1:${port}/metrics`]);
  assert.match(metrics.stdout, /kiln_rack_http_requests_total\{worker="main",code="200"\} 1/);
  assert.doesNotMatch(metrics.stdout, /kiln_rack_worker_up/);
});

test('worker pool: ports from the first worker, lookups answered by the main process, error codes kept', async (t) => {
  const e = env(2);
  const { lines, logger } = capture();
  const pool = await startRackWorkers({
    config: e.config,
    logger,
    resolver,
    count: 2,
    workerCommand: WORKER,
  });
  const pids = [...pool.pids().values()];
  t.after(async () => {
    await pool.stop();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
    e.cleanup();
  });
  assert.equal(pids.length, 2);
  const { tftp, http } = pool.ports();
  assert.ok(tftp && http, 'both ports bound');
  const ready = lines.filter((l) => l.msg === 'rack worker ready');
  assert.deepEqual(
    ready.map((l) => [l.tftp, l.http]),
    [
      [tftp, http],
      [tftp, http],
    ],
    'the second worker joined the ports the first picked',
  );

  const out = join(e.dataDir, 'got');
  const get = async (name: string) => {
    rmSync(out, { force: true });
    return run('tftp', ['127.0.0.1', String(tftp), '-m', 'binary', '-c', 'get', name, out]);
  };
  await get('undionly.kpxe');
  assert.ok(readFileSync(out).equals(readFileSync(LOADER)));
  await get('hello.ipxe');
  assert.equal(readFileSync(out, 'utf8'), '#!ipxe\necho tftp\n');
  // PATH_REFUSED crossed the IPC with its code: TFTP says "access violation", not "internal error".
  const refused = await get('secret');
  assert.match(refused.stdout + refused.stderr, /Error code 2/);
  const broken = await get('broken');
  assert.match(broken.stdout + broken.stderr, /Error code 0: internal error/);
  const missing = await get('nothing-here');
  assert.match(missing.stdout + missing.stderr, /Error code 1/);

  const status = async (path: string) =>
    (await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${http}${path}`]))
      .stdout;
  assert.equal(await status('/broken'), '500');
  assert.equal(await status('/nothing-here'), '404');
  assert.equal(await status('/hello.ipxe'), '200');

  const snap = await pool.collect();
  assert.deepEqual(
    snap.map((s) => [s.worker, s.up, s.restarts]),
    [
      [1, true, 0],
      [2, true, 0],
    ],
  );
  const sum = (f: (s: (typeof snap)[number]) => number) => snap.reduce((n, s) => n + f(s), 0);
  assert.equal(
    sum((s) => s.stats.tftp?.completed ?? 0),
    2,
  );
  assert.equal(
    sum((s) => s.stats.http?.byStatus['500'] ?? 0),
    1,
  );

  // Stop: every worker exits.
  await pool.stop();
  await waitFor('workers gone', () =>
    pids.every((pid) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }),
  );
});

test('a worker that cannot bind is explained by the main process, naming the port and the key', async (t) => {
  const e = env(2);
  const c = e.config as unknown as { rack: { http: { host: string } } };
  c.rack.http.host = '192.0.2.1'; // TEST-NET-1: not on this host
  const { lines, logger } = capture();
  const pool = await startRackWorkers({
    config: e.config as Config,
    logger,
    resolver,
    count: 2,
    workerCommand: WORKER,
  });
  const pids = [...pool.pids().values()];
  t.after(async () => {
    await pool.stop();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    e.cleanup();
  });
  assert.ok(pool.ports().tftp, 'TFTP still runs');
  assert.equal(pool.ports().http, null);
  const errors = lines.filter((l) => l.level === 50 && String(l.msg).startsWith('Boot HTTP cannot listen'));
  assert.equal(errors.length, 2, 'one line per worker');
  assert.match(String(errors[0]!.msg), /address to bind is not on this host/);
});
