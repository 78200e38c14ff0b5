import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/lib/logger.js';
import { getBootConfig } from '../../../src/region/boot-config.js';
import { createRegionApp } from '../../../src/region/http/app.js';
import { metadataRoutes } from '../../../src/region/http/metadata.js';
import { putBootResource } from '../../../src/storage/boot-resources.js';
import { issueBootToken } from '../../../src/storage/boot-tokens.js';
import { listEvents } from '../../../src/storage/events.js';
import { findMachineByMac, getMachine } from '../../../src/storage/machines.js';
import { openRegionDatabase } from '../../../src/storage/region-db.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'kiln-metadata-'));
const db = openRegionDatabase(dir, silentLogger);
const { config } = loadConfig({ env: {} });
let server: Server;
let base = '';

before(async () => {
  putBootResource(db, {
    name: 'kiln/ephemeral',
    architecture: 'amd64/generic',
    kind: 'ephemeral',
    files: [
      { name: 'vmlinuz', filetype: 'kernel', sha256: 'a'.repeat(64), size: 1, path: 'x' },
      { name: 'initrd.img', filetype: 'initrd', sha256: 'b'.repeat(64), size: 1, path: 'y' },
    ],
  });
  const app = createRegionApp({
    config,
    logger: silentLogger,
    db,
    plugins: [metadataRoutes({ db, logger: silentLogger })],
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((r) => server.close(r));
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function enlist(mac: string): { systemId: string; token: string; url: string } {
  const a = getBootConfig(
    { db, config, logger: silentLogger },
    { mac, arch: 'amd64', local_ip: '127.0.0.1', remote_ip: '127.0.0.1' },
  );
  const token = /kiln\.token=(\S+)/.exec(a.kernel_params)![1]!;
  return { systemId: a.system_id, token, url: a.metadata_url!.replace('http://127.0.0.1:5240', base) };
}

const summary = (mac: string, more: Record<string, unknown> = {}) => ({
  schema: 1,
  arch: 'amd64',
  machine: 'x86_64',
  firmware: 'bios',
  boot_mac: mac,
  cpu: { count: 2, model: 'QEMU Virtual CPU' },
  memory_bytes: 512 * 1048576,
  interfaces: [
    { name: 'eth0', mac, ipv4: '10.9.0.50/24', driver: 'virtio_net' },
    { name: 'eth1', mac: '52:54:00:99:00:01', ipv4: '', driver: 'e1000' },
  ],
  disks: [{ name: 'vda', size_bytes: 1 << 30, model: '', rotational: true }],
  ...more,
});

test("busybox wget, as kiln's initramfs posts it, stores the inventory, adds the NICs and logs an event", async () => {
  const mac = '52:54:00:00:02:01';
  const { systemId, token, url } = enlist(mac);
  const file = join(dir, 'hw.json');
  writeFileSync(file, JSON.stringify(summary(mac)));
  await run('busybox', [
    'wget',
    '-q',
    '-O',
    join(dir, 'resp'),
    '--header',
    'Content-Type: application/json',
    '--header',
    `Authorization: Bearer ${token}`,
    '--post-file',
    file,
    url,
  ]);
  const m = getMachine(db, systemId)!;
  assert.equal(m.status, 'NEW');
  assert.equal((m.hardware as { cpu: { count: number } }).cpu.count, 2);
  assert.deepEqual(m.interfaces.map((i) => i.mac).sort(), [mac, '52:54:00:99:00:01']);
  assert.equal(m.boot_mac, mac);
  const ev = listEvents(db, m.id).items.find((e) => e.type === 'metadata.hardware');
  assert.match(ev!.text, /amd64, 2 CPU, 512 MiB, 2 NIC, 1 disk/);
  // Posting again (the initramfs retries) is fine and changes nothing else.
  const again = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(summary(mac)),
  });
  assert.equal(again.status, 200);
});

test('the token may come in the query for clients without custom headers', async () => {
  const mac = '52:54:00:00:02:02';
  const { systemId, token, url } = enlist(mac);
  const r = await fetch(`${url}?token=${token}`, {
    method: 'POST',
    body: JSON.stringify(summary(mac, { interfaces: [] })),
  });
  assert.equal(r.status, 200);
  assert.ok(getMachine(db, systemId)!.hardware);
});

test('missing, wrong, malformed and expired tokens are 401 and store nothing', async () => {
  const mac = '52:54:00:00:02:03';
  const { systemId, url } = enlist(mac);
  const body = JSON.stringify(summary(mac));
  const expired = issueBootToken(db, findMachineByMac(db, mac)!.id, 1000, Date.now() - 5000);
  for (const headers of [
    {},
    { authorization: 'Bearer nope' },
    { authorization: 'Basic abc' },
    { authorization: `Bearer ${expired}` },
    { authorization: `Bearer ${'x'.repeat(5000)}` },
  ] as Array<Record<string, string>>) {
    const r = await fetch(url, { method: 'POST', headers, body });
    assert.equal(r.status, 401, JSON.stringify(headers).slice(0, 80));
    const e = (await r.json()) as { error: { code: string } };
    assert.equal(e.error.code, 'KILN_ERR_UNAUTHORIZED');
  }
  assert.equal(getMachine(db, systemId)!.hardware, null);
});

test('malformed and oversized bodies are 400/413 and store nothing', async () => {
  const mac = '52:54:00:00:02:04';
  const { systemId, token, url } = enlist(mac);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  for (const body of [
    '',
    '{',
    '[]',
    '"x"',
    '{"arch": 5}',
    JSON.stringify({ arch: 'amd64', interfaces: 'eth0' }),
    JSON.stringify({ arch: 'amd64', cpu: { count: -1 } }),
  ]) {
    const r = await fetch(url, { method: 'POST', headers, body });
    assert.equal(r.status, 400, body);
  }
  const big = JSON.stringify(summary(mac, { pad: 'x'.repeat(100 * 1024) }));
  const r = await fetch(url, { method: 'POST', headers, body: big });
  assert.equal(r.status, 413);
  assert.equal(getMachine(db, systemId)!.hardware, null);
  assert.ok(!listEvents(db, findMachineByMac(db, mac)!.id).items.some((e) => e.type === 'metadata.hardware'));
});

test('a NIC another machine owns is not moved; the inventory is still stored', async () => {
  const other = '52:54:00:00:02:05';
  enlist(other);
  const mac = '52:54:00:00:02:06';
  const { systemId, token, url } = enlist(mac);
  const r = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(
      summary(mac, {
        interfaces: [
          { name: 'eth0', mac },
          { name: 'eth1', mac: other },
        ],
      }),
    ),
  });
  assert.equal(r.status, 200);
  const m = getMachine(db, systemId)!;
  assert.ok(m.hardware);
  assert.deepEqual(
    m.interfaces.map((i) => i.mac),
    [mac],
  );
  assert.equal(findMachineByMac(db, other)!.system_id !== systemId, true);
});
