import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Database from 'better-sqlite3';
import { loadConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/lib/logger.js';
import { createRegionApp } from '../../../src/region/http/app.js';
import { leaseRoutes } from '../../../src/region/http/leases.js';
import { routesOf } from '../../../src/region/http/openapi.js';
import { subnetDhcpRoutes } from '../../../src/region/http/subnet-dhcp.js';
import { createApiKey } from '../../../src/storage/api-keys.js';
import { type LeaseReport, storeLeaseReports } from '../../../src/storage/dhcp-records.js';
import { getRack, registerRack } from '../../../src/storage/racks.js';
import { openRegionDatabase } from '../../../src/storage/region-db.js';
import { errorOf, jsonOf } from './helpers.js';

/**
 * The leases, discoveries, reservations and subnet DHCP routes over real HTTP and a real SQLite
 * file, mounted as the DHCP module mounts them, with the rack notifications recorded.
 */

let root: string;
let db: Database.Database;
let server: Server;
let base: string;
let key: string;
const notified: number[][] = [];
let rackA: number;
let rackB: number;
const plugins = () => [
  leaseRoutes({ db }),
  subnetDhcpRoutes({ db, onRacksChanged: (ids) => notified.push([...ids].sort((a, b) => a - b)) }),
];

function api(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set('authorization', `Bearer ${key}`);
  if (json !== undefined) headers.set('content-type', 'application/json');
  return fetch(base + path, {
    ...rest,
    headers,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
}

async function ok(res: Response, status = 200): Promise<Record<string, any>> {
  const body = res.status === 204 ? {} : await jsonOf(res);
  assert.equal(res.status, status, JSON.stringify(body));
  return body;
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'kiln-leases-http-'));
  const dataDir = join(root, 'data');
  db = openRegionDatabase(dataDir, silentLogger);
  const { config } = loadConfig({ env: {}, overrides: { data_dir: dataDir } });
  const app = createRegionApp({ config, logger: silentLogger, db, plugins: plugins() });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  key = createApiKey(db, 'test').key;
  const reg = (hostname: string) =>
    registerRack(db, { system_id: null, hostname, name: null, version: 't', interfaces: [] }, Date.now()).id;
  rackA = reg('rack-a');
  rackB = reg('rack-b');
});

after(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  db?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

const report = (over: Partial<LeaseReport> & Pick<LeaseReport, 'subnet_id' | 'ip' | 'mac'>): LeaseReport => ({
  state: 'active',
  expires_at: Date.now() + 3_600_000,
  hostname: null,
  updated_at: Date.now(),
  ...over,
});

describe('leases and discoveries API', () => {
  test('GET /subnets/{id}/leases pages in address order; 404 for unknown subnets; query checked', async () => {
    const s = await ok(await api('/api/v1/subnets', { method: 'POST', json: { cidr: '10.50.0.0/24' } }), 201);
    const reports = Array.from({ length: 12 }, (_, i) =>
      report({ subnet_id: s.id, ip: `10.50.0.${20 - i}`, mac: `52:54:00:50:00:${(i + 16).toString(16)}` }),
    );
    reports.push(report({ subnet_id: s.id, ip: '10.50.0.100', mac: '52:54:00:50:01:00', state: 'released' }));
    storeLeaseReports(db, rackA, reports);
    const ips: string[] = [];
    let next: string | null = null;
    do {
      const page: Record<string, any> = await ok(
        await api(`/api/v1/subnets/${s.id}/leases?limit=5${next ? `&cursor=${next}` : ''}`),
      );
      ips.push(...page.items.map((l: { ip: string }) => l.ip));
      next = page.next;
    } while (next);
    assert.deepEqual(ips, [...Array.from({ length: 12 }, (_, i) => `10.50.0.${9 + i}`), '10.50.0.100']);
    const released = await ok(await api(`/api/v1/subnets/${s.id}/leases?state=released`));
    assert.deepEqual(
      released.items.map((l: { ip: string }) => l.ip),
      ['10.50.0.100'],
    );
    assert.equal(released.items[0].rack, getRack(db, rackA).system_id);
    await errorOf(await api('/api/v1/subnets/999999/leases'), 404, 'KILN_ERR_NOT_FOUND');
    await errorOf(await api('/api/v1/subnets/abc/leases'), 404, 'KILN_ERR_NOT_FOUND');
    await errorOf(await api(`/api/v1/subnets/${s.id}/leases?state=odd`), 400, 'KILN_ERR_VALIDATION');
    await errorOf(await api(`/api/v1/subnets/${s.id}/leases?colour=red`), 400, 'KILN_ERR_VALIDATION');
    await errorOf(await api(`/api/v1/subnets/${s.id}/leases?cursor=!!`), 400, 'KILN_ERR_VALIDATION');
    await errorOf(await fetch(`${base}/api/v1/subnets/${s.id}/leases`), 401, 'KILN_ERR_UNAUTHORIZED');
  });

  test('GET /discoveries lists unknown MACs; machines show their current addresses', async () => {
    const s = await ok(await api('/api/v1/subnets', { method: 'POST', json: { cidr: '10.51.0.0/24' } }), 201);
    storeLeaseReports(db, rackA, [
      report({ subnet_id: s.id, ip: '10.51.0.10', mac: '52:54:00:51:00:01', hostname: 'stranger' }),
      report({ subnet_id: s.id, ip: '10.51.0.11', mac: '52:54:00:51:00:02' }),
    ]);
    const d = await ok(await api(`/api/v1/discoveries?subnet_id=${s.id}`));
    assert.deepEqual(
      d.items.map((x: { mac: string; ip: string; hostname: string | null }) => [x.mac, x.ip, x.hostname]),
      [
        ['52:54:00:51:00:01', '10.51.0.10', 'stranger'],
        ['52:54:00:51:00:02', '10.51.0.11', null],
      ],
    );
    await errorOf(await api('/api/v1/discoveries?subnet_id=x'), 400, 'KILN_ERR_VALIDATION');
    // The second MAC enlists: it leaves the discoveries and its machine shows the address.
    const m = await ok(
      await api('/api/v1/machines', {
        method: 'POST',
        json: { boot_mac: '52:54:00:51:00:02', hostname: 'enlisted' },
      }),
      201,
    );
    const d2 = await ok(await api(`/api/v1/discoveries?subnet_id=${s.id}`));
    assert.deepEqual(
      d2.items.map((x: { mac: string }) => x.mac),
      ['52:54:00:51:00:01'],
    );
    const one = await ok(await api(`/api/v1/machines/${m.system_id}`));
    assert.deepEqual(
      one.ip_addresses.map((a: { ip: string; source: string }) => [a.ip, a.source]),
      [['10.51.0.11', 'dhcp']],
    );
    const list = await ok(await api('/api/v1/machines?hostname=enlisted'));
    assert.equal(list.items[0].ip_addresses[0].ip, '10.51.0.11');
    const lease = await ok(await api(`/api/v1/subnets/${s.id}/leases`));
    assert.equal(lease.items.find((l: { ip: string }) => l.ip === '10.51.0.11').machine, m.system_id);
    const patched = await ok(
      await api(`/api/v1/machines/${m.system_id}`, { method: 'PATCH', json: { description: 'x' } }),
    );
    assert.equal(patched.ip_addresses[0].ip, '10.51.0.11');
    const doc = await ok(await fetch(`${base}/api/v1/openapi.json`));
    const schema =
      doc.paths['/api/v1/machines/{system_id}'].get.responses['200'].content['application/json'].schema;
    assert.ok(schema.properties.ip_addresses);
    // Other answers of the machine routes pass through untouched.
    await errorOf(await api('/api/v1/machines/nosuch'), 404, 'KILN_ERR_NOT_FOUND');
  });
});

describe('reservations, subnet DHCP settings and rack notices', () => {
  test('a subnet change tells the racks that served it before and after; failures tell nobody', async () => {
    notified.length = 0;
    const s = await ok(
      await api('/api/v1/subnets', {
        method: 'POST',
        json: { cidr: '10.60.0.0/24', managed: true, rack_id: rackA },
      }),
      201,
    );
    assert.deepEqual(notified, [[rackA]]);
    await ok(await api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { rack_id: rackB } }));
    assert.deepEqual(notified[1], [rackA, rackB]);
    await errorOf(
      await api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { gateway: '10.99.0.1' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    assert.equal(notified.length, 2);
    await ok(await api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { managed: false } }));
    assert.deepEqual(notified[2], [rackB]);
    // Not served before or after: nobody to tell.
    await ok(await api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { name: 'quiet' } }));
    assert.equal(notified.length, 3);
    await ok(await api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { managed: true } }));
    await ok(await api(`/api/v1/subnets/${s.id}`, { method: 'DELETE' }), 204);
    assert.deepEqual(notified.slice(3), [[rackB], [rackB]]);
    await errorOf(await api(`/api/v1/subnets/${s.id}`, { method: 'DELETE' }), 404, 'KILN_ERR_NOT_FOUND');
    assert.equal(notified.length, 5);
  });

  test('reservations: create, list, conflicts, delete; the serving rack is told each time', async () => {
    notified.length = 0;
    const s = await ok(
      await api('/api/v1/subnets', {
        method: 'POST',
        json: {
          cidr: '10.61.0.0/24',
          gateway: '10.61.0.1',
          dynamic_range: { start: '10.61.0.100', end: '10.61.0.200' },
          managed: true,
          rack_id: rackA,
        },
      }),
      201,
    );
    notified.length = 0;
    const path = `/api/v1/subnets/${s.id}/reservations`;
    const r = await api(path, { method: 'POST', json: { mac: '52-54-00-61-00-01', ip: '10.61.0.10' } });
    const created = await ok(r, 201);
    assert.equal(r.headers.get('location'), `${path}/52:54:00:61:00:01`);
    assert.equal(created.mac, '52:54:00:61:00:01');
    assert.deepEqual(notified, [[rackA]]);
    await errorOf(
      await api(path, { method: 'POST', json: { mac: '52:54:00:61:00:02', ip: '10.61.0.10' } }),
      409,
      'KILN_ERR_CONFLICT',
    );
    await errorOf(
      await api(path, { method: 'POST', json: { mac: '52:54:00:61:00:02', ip: '10.61.0.150' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(
      await api(path, { method: 'POST', json: { mac: '52:54:00:61:00:02' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(
      await api(path, { method: 'POST', json: { mac: '52:54:00:61:00:02', ip: '10.61.0.11', vlan: 3 } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(
      await api('/api/v1/subnets/999999/reservations', {
        method: 'POST',
        json: { mac: '52:54:00:61:00:02', ip: '10.61.0.11' },
      }),
      404,
      'KILN_ERR_NOT_FOUND',
    );
    assert.equal(notified.length, 1);
    const list = await ok(await api(path));
    assert.deepEqual(
      list.items.map((x: { ip: string }) => x.ip),
      ['10.61.0.10'],
    );
    // The owning machine's hostname change changes what DHCP sends (option 12): the rack is told.
    const m = await ok(
      await api('/api/v1/machines', { method: 'POST', json: { boot_mac: '52:54:00:61:00:01' } }),
      201,
    );
    await ok(
      await api(`/api/v1/machines/${m.system_id}`, { method: 'PATCH', json: { hostname: 'renamed' } }),
    );
    assert.ok(notified.length >= 2 && notified.every((n) => n.length === 1 && n[0] === rackA));
    const one = await ok(await api(`/api/v1/machines/${m.system_id}`));
    assert.deepEqual(one.ip_addresses, [
      { mac: '52:54:00:61:00:01', ip: '10.61.0.10', subnet_id: s.id, source: 'reserved', expires_at: null },
    ]);
    const before = notified.length;
    await ok(await api(`${path}/52:54:00:61:00:01`, { method: 'DELETE' }), 204);
    await errorOf(await api(`${path}/52:54:00:61:00:01`, { method: 'DELETE' }), 404, 'KILN_ERR_NOT_FOUND');
    assert.equal(notified.length, before + 1);
  });

  test('GET/PATCH /subnets/{id}/dhcp: domain and lease time', async () => {
    const s = await ok(await api('/api/v1/subnets', { method: 'POST', json: { cidr: '10.62.0.0/24' } }), 201);
    assert.deepEqual(await ok(await api(`/api/v1/subnets/${s.id}/dhcp`)), {
      domain: null,
      lease_seconds: 3600,
    });
    assert.deepEqual(
      await ok(
        await api(`/api/v1/subnets/${s.id}/dhcp`, {
          method: 'PATCH',
          json: { domain: 'lab.test', lease_seconds: 600 },
        }),
      ),
      { domain: 'lab.test', lease_seconds: 600 },
    );
    await errorOf(
      await api(`/api/v1/subnets/${s.id}/dhcp`, { method: 'PATCH', json: { lease_seconds: 1 } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(
      await api(`/api/v1/subnets/${s.id}/dhcp`, { method: 'PATCH', json: { domain: 'a b' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(await api('/api/v1/subnets/999999/dhcp'), 404, 'KILN_ERR_NOT_FOUND');
  });

  test('OpenAPI describes every route of these plugins and keeps the inventory routes described', async () => {
    const doc = await ok(await fetch(`${base}/api/v1/openapi.json`));
    const missing: string[] = [];
    for (const p of plugins()) {
      for (const { method, path } of routesOf(p.router)) {
        if (!doc.paths[path]?.[method]) missing.push(`${method} ${path}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(doc.paths['/api/v1/subnets/{id}/leases'].get.responses['404']);
    assert.match(doc.paths['/api/v1/machines/{system_id}'].get.summary, /machine/i);
    assert.match(doc.paths['/api/v1/subnets/{id}'].patch.summary, /subnet/i);
  });
});
