import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import { ipToInt } from '../../src/lib/ipv4.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { Mac } from '../../src/lib/mac.js';
import { type DhcpLink, linkDhcpToRegion } from '../../src/rack/dhcp-link.js';
import { DhcpService } from '../../src/rack/dhcp-service.js';
import { RegionClient } from '../../src/rack/region-client.js';
import { readRackSecret } from '../../src/rack/secret.js';
import { RACK_NOT_REGISTERED } from '../../src/region/dhcp-module.js';
import { ensureRegionSecrets } from '../../src/region/secrets.js';
import { type RegionWorker, startRegionWorker } from '../../src/region/worker.js';
import { type DhcpConfig, GetDhcpConfig, UpdateLeases } from '../../src/rpc/commands/dhcp.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { listEvents } from '../../src/storage/events.js';
import { findMachineByMac } from '../../src/storage/machines.js';
import { getRack } from '../../src/storage/racks.js';
import { testConfig, waitFor } from './helpers.js';

/**
 * The DHCP module in a real region worker (its standard module list), reached by a real rack: a
 * RegionClient over TLS on loopback with the rack's own DHCP service and region link. The service
 * is given no local interfaces, so it serves nothing and touches no network; what it receives and
 * reports is what a serving rack would.
 */

let env: ReturnType<typeof testConfig>;
let worker: RegionWorker;
let client: RegionClient;
let dhcp: DhcpService;
let link: DhcpLink;
let base: string;
let key: string;
let rackId: number;
const applied: DhcpConfig[] = [];

const api = async (path: string, method = 'GET', json?: unknown) => {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(json ? { 'content-type': 'application/json' } : {}) },
    ...(json ? { body: JSON.stringify(json) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};

before(async () => {
  env = testConfig({ http: 0, rpc: 0 });
  await ensureRegionSecrets(env.dataDir, silentLogger);
  worker = await startRegionWorker({ config: env.config, logger: silentLogger });
  base = `http://127.0.0.1:${worker.httpPort}`;
  key = createApiKey(worker.db, 'test').key;
  const rackDir = join(env.dataDir, 'rack-side');
  client = new RegionClient({
    regionUrls: [base],
    secret: readRackSecret(join(env.dataDir, 'secret')),
    dataDir: rackDir,
    hostname: 'dhcp-rack',
    name: null,
    software: 'test',
    logger: silentLogger,
  });
  dhcp = new DhcpService({
    dataDir: rackDir,
    port: 0,
    proxyPort: null,
    allowedInterfaces: [],
    httpPort: 0,
    logger: silentLogger,
    native: null,
    probeTimeoutMs: 0,
    listInterfaces: () => ({}),
  });
  // Observe what the rack applies (the real apply still runs).
  const apply = dhcp.apply.bind(dhcp);
  dhcp.apply = (cfg) => {
    applied.push(cfg);
    return apply(cfg);
  };
  link = linkDhcpToRegion({ dhcp, region: client, logger: silentLogger, pollMs: 3_600_000, reportMs: 100 });
  client.start();
  const systemId = await waitFor('the rack to register', () => client.systemId && client.httpToken);
  rackId = getRack(worker.db, client.systemId ?? systemId).id;
  // The link fetched the (empty) configuration on connecting.
  await waitFor('the first configuration', () => applied.length >= 1);
});

after(async () => {
  link?.stop();
  await client?.stop();
  await dhcp?.stop();
  await worker?.stop();
  env?.cleanup();
});

test('GetDhcpConfig answers only managed subnets assigned to the calling rack, with everything DHCP needs', async () => {
  assert.deepEqual(await client.call(GetDhcpConfig, {}), { subnets: [] });
  const other = await api('/api/v1/subnets', 'POST', {
    cidr: '10.70.1.0/24',
    managed: false,
    rack_id: rackId,
  });
  assert.equal(other.status, 201);
  const s = await api('/api/v1/subnets', 'POST', {
    cidr: '10.70.0.0/24',
    gateway: '10.70.0.1',
    dns_servers: ['10.70.0.2', '1.1.1.1'],
    dynamic_range: { start: '10.70.0.100', end: '10.70.0.199' },
    managed: true,
    rack_id: rackId,
  });
  assert.equal(s.status, 201);
  assert.equal((await api(`/api/v1/subnets/${s.body.id}/dhcp`, 'PATCH', { domain: 'lab.test' })).status, 200);
  const m = await api('/api/v1/machines', 'POST', { boot_mac: '52:54:00:70:00:05', hostname: 'pinned' });
  assert.equal(m.status, 201);
  const r = await api(`/api/v1/subnets/${s.body.id}/reservations`, 'POST', {
    mac: '52:54:00:70:00:05',
    ip: '10.70.0.5',
  });
  assert.equal(r.status, 201);
  assert.deepEqual(await client.call(GetDhcpConfig, {}), {
    subnets: [
      {
        id: s.body.id,
        cidr: '10.70.0.0/24',
        proxy_mode: false,
        gateway: '10.70.0.1',
        dns_servers: ['10.70.0.2', '1.1.1.1'],
        domain: 'lab.test',
        lease_seconds: 3600,
        dynamic_ranges: [{ start: '10.70.0.100', end: '10.70.0.199' }],
        reservations: [{ mac: '52:54:00:70:00:05', ip: '10.70.0.5', hostname: 'pinned' }],
      },
    ],
  });
});

test('an API change reaches the rack as DhcpConfigChanged, and the rack fetches and applies the new config', async () => {
  const s = await api('/api/v1/subnets', 'POST', {
    cidr: '10.71.0.0/24',
    dynamic_range: { start: '10.71.0.10', end: '10.71.0.20' },
    managed: true,
    rack_id: rackId,
    proxy_mode: true,
  });
  assert.equal(s.status, 201);
  const has = (cfg: DhcpConfig | undefined) => cfg?.subnets.some((x) => x.id === s.body.id && x.proxy_mode);
  // The poll is an hour: only the notice can make the rack apply this soon.
  await waitFor('the rack to apply the new subnet', () => has(applied.at(-1)), 10_000);
  assert.equal((await api(`/api/v1/subnets/${s.body.id}`, 'PATCH', { managed: false })).status, 200);
  await waitFor('the rack to apply the removal', () => !has(applied.at(-1)), 10_000);
  assert.ok(!has(await client.call(GetDhcpConfig, {})));
});

test("the rack's lease reports land on the subnet, on known machines' timelines and as discoveries", async () => {
  const s = await api('/api/v1/subnets', 'POST', { cidr: '10.72.0.0/24', managed: true, rack_id: rackId });
  const known = await api('/api/v1/machines', 'POST', { boot_mac: '52:54:00:72:00:01', hostname: 'known72' });
  assert.equal(known.status, 201);
  const now = Date.now();
  const put = (ip: string, mac: string, hostname: string | null) =>
    dhcp.leases.put({
      ip: ipToInt(ip),
      mac: mac as Mac,
      clientId: null,
      subnetId: String(s.body.id),
      expiresAt: now + 600_000,
      hostname,
      state: 'active',
    });
  put('10.72.0.10', '52:54:00:72:00:01', 'known72');
  put('10.72.0.11', '52:54:00:72:00:99', 'stranger');
  dhcp.leases.flush();
  // The link reports every 100 ms; wait until the region has both.
  const leases = await waitFor('both leases at the region', async () => {
    const l = await api(`/api/v1/subnets/${s.body.id}/leases`);
    return l.body.items.length === 2 ? l.body.items : null;
  });
  assert.deepEqual(
    leases.map((l: { ip: string; mac: string; state: string; machine: string | null; rack: string }) => [
      l.ip,
      l.mac,
      l.state,
      l.machine,
      l.rack,
    ]),
    [
      ['10.72.0.10', '52:54:00:72:00:01', 'active', known.body.system_id, client.systemId],
      ['10.72.0.11', '52:54:00:72:00:99', 'active', null, client.systemId],
    ],
  );
  const d = await api(`/api/v1/discoveries?subnet_id=${s.body.id}`);
  assert.deepEqual(
    d.body.items.map((x: { mac: string; ip: string; rack: string }) => [x.mac, x.ip, x.rack]),
    [['52:54:00:72:00:99', '10.72.0.11', client.systemId]],
  );
  const m = await api(`/api/v1/machines/${known.body.system_id}`);
  assert.deepEqual(
    m.body.ip_addresses.map((a: { ip: string }) => a.ip),
    ['10.72.0.10'],
  );
  // Reported once: the rack marks them reported, and a resend of the same records stores nothing.
  await waitFor('the rack to mark its leases reported', () => dhcp.pendingLeaseReports().length === 0);
  const again = await client.call(UpdateLeases, {
    leases: dhcp.leases.list(String(s.body.id)).map((l) => ({
      subnet_id: s.body.id,
      ip: `10.72.0.${l.ip & 255}`,
      mac: l.mac,
      state: l.state,
      expires_at: l.expiresAt,
      hostname: l.hostname,
      updated_at: (
        worker.db
          .prepare('SELECT rack_updated_at FROM dhcp_leases WHERE subnet_id = ? AND ip = ?')
          .get(s.body.id, `10.72.0.${l.ip & 255}`) as { rack_updated_at: number }
      ).rack_updated_at,
    })),
  });
  assert.deepEqual(again, { stored: 0, discoveries: 0 });
  const machine = findMachineByMac(worker.db, '52:54:00:72:00:01')!;
  assert.equal(listEvents(worker.db, machine.id, { type: 'dhcp.lease' }).items.length, 1);
});

test('a connection that has not registered a rack gets a named error, not a configuration', async () => {
  const h = worker.handlers.get(GetDhcpConfig.name)!;
  const ctx = { signal: new AbortController().signal, peer: {}, logger: silentLogger };
  assert.throws(
    () => h.handler({}, ctx),
    (err: unknown) => isKilnError(err, RACK_NOT_REGISTERED),
  );
  // Naming a rack the region knows is enough on an authenticated link.
  assert.deepEqual(
    (h.handler({ rack_system_id: client.systemId }, ctx) as { subnets: Array<{ cidr: string }> }).subnets.map(
      (x) => x.cidr,
    ),
    ['10.70.0.0/24', '10.72.0.0/24'],
  );
  const u = worker.handlers.get(UpdateLeases.name)!;
  assert.throws(
    () => u.handler({ leases: [] }, ctx),
    (err: unknown) => isKilnError(err, RACK_NOT_REGISTERED),
  );
});
