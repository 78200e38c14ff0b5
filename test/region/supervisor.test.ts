import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/lib/logger.js';
import { RegionClient } from '../../src/rack/region-client.js';
import { readRackSecret } from '../../src/rack/secret.js';
import { Identify, Ping } from '../../src/rpc/commands/index.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';
import { highPort, testConfig, waitFor } from './helpers.js';

const MAIN = join(import.meta.dirname, '../../src/main.ts');

function httpJson(
  port: number,
  method: string,
  path: string,
  key?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    // agent: false → a new connection each time, so SO_REUSEPORT spreads requests over workers.
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: key ? { authorization: `Bearer ${key}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function pidOf(workerId: string): number {
  return Number(/pid=(\d+)$/.exec(workerId)![1]);
}

test('two region workers + a rack: one connection per worker, calls both ways, kill -9 heals', async (t) => {
  const httpPort = highPort();
  const rpcPort = httpPort + 1;
  const env = testConfig({ http: httpPort, rpc: rpcPort });
  let region: ChildProcess | undefined;
  const workerPids = new Set<number>();
  let client: RegionClient | undefined;
  t.after(async () => {
    await client?.stop();
    if (region?.pid && region.exitCode === null) region.kill('SIGKILL');
    for (const pid of workerPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    env.cleanup();
  });

  region = spawn(process.execPath, [...process.execArgv, MAIN, 'region'], {
    env: {
      ...process.env,
      KILN_DATA_DIR: env.dataDir,
      KILN_LOG_LEVEL: 'warn',
      KILN_REGION_WORKERS: '2',
      KILN_REGION_HTTP_HOST: '127.0.0.1',
      KILN_REGION_RPC_HOST: '127.0.0.1',
      KILN_REGION_HTTP_PORT: String(httpPort),
      KILN_REGION_RPC_PORT: String(rpcPort),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => region!.once('exit', (code) => r(code)));

  const loops = await waitFor('two workers in /rpc', async () => {
    const r = await httpJson(httpPort, 'GET', '/rpc');
    const l = r.body.eventloops as Record<string, Array<[string, number]>> | null;
    return l && Object.keys(l).length === 2 ? l : null;
  });
  for (const [id, addrs] of Object.entries(loops)) {
    workerPids.add(pidOf(id));
    assert.deepEqual(addrs, [['127.0.0.1', rpcPort]]);
  }

  client = new RegionClient({
    regionUrls: [`http://127.0.0.1:${httpPort}`],
    secret: readRackSecret(join(env.dataDir, 'secret')),
    dataDir: join(env.dataDir, 'rack-side'),
    hostname: 'rack-under-test',
    name: null,
    software: 'test',
    logger: silentLogger,
    pingMs: 1000,
  });
  const identifiedBy = new Set<string>();
  client.handlers.register(Identify, (_a, ctx) => {
    identifiedBy.add(String(ctx.peer.worker));
    return { system_id: client!.systemId, hostname: 'rack-under-test', version: 'test' };
  });
  client.start();
  await waitFor('the rack to be whole', () => client!.isWhole(), 30_000);
  assert.deepEqual(client.connectedWorkers(), Object.keys(loops).sort());
  const systemId = client.systemId!;
  assert.match(systemId, /^[a-z0-9]{6}$/);
  assert.match(client.httpToken!, new RegExp(`^rack\\.${systemId}\\.`));

  // The racks API shows one connection per worker.
  const db = openRegionDatabase(env.dataDir, silentLogger);
  const { key } = createApiKey(db, 'test');
  db.close();
  const racks = await httpJson(httpPort, 'GET', '/api/v1/racks', key);
  assert.equal(racks.status, 200);
  const [entry] = racks.body.items as Array<{
    system_id: string;
    connections: Array<{ worker: string }>;
    last_seen: string;
  }>;
  assert.equal(entry?.system_id, systemId);
  assert.deepEqual(entry!.connections.map((c) => c.worker).sort(), Object.keys(loops).sort());
  assert.ok(entry!.last_seen);

  // A call from each worker reaches the rack.
  const answeredBy = new Set<string>();
  await waitFor('identify from both workers', async () => {
    const r = await httpJson(httpPort, 'POST', `/api/v1/racks/${systemId}/identify`, key);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    answeredBy.add(String(r.body.worker));
    return answeredBy.size === 2;
  });
  assert.deepEqual([...identifiedBy].sort(), Object.keys(loops).sort());

  // kill -9 one worker while calls keep flowing to the other.
  const [victim, survivor] = Object.keys(loops) as [string, string];
  let stopCalls = false;
  const failures: unknown[] = [];
  let calls = 0;
  const caller = (async () => {
    while (!stopCalls) {
      try {
        await client!.callWorker(survivor, Ping, { echo: calls });
        await client!.call(Ping, {});
        calls++;
      } catch (err) {
        failures.push(err);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  process.kill(pidOf(victim), 'SIGKILL');
  await waitFor('the victim to be gone', () => !client!.connectedWorkers().includes(victim), 30_000);
  const healed = await waitFor(
    'a restarted worker and a whole rack',
    () => {
      const w = client!.connectedWorkers();
      return client!.isWhole() && w.length === 2 && !w.includes(victim) && w.includes(survivor) ? w : null;
    },
    60_000,
  );
  for (const id of healed) workerPids.add(pidOf(id));
  stopCalls = true;
  await caller;
  assert.ok(calls > 0);
  assert.deepEqual(failures, [], 'no call to a live worker failed');

  // /metrics on any worker answers for both.
  const metrics = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: httpPort, path: '/metrics', agent: false }, (res) => {
      let s = '';
      res.on('data', (c) => (s += c));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
  assert.match(metrics, /kiln_http_requests_total/);

  region.kill('SIGTERM');
  assert.equal(await exited, 0);
});
