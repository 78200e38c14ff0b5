import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import {
  getBootConfig,
  metadataUrlFor,
  purposeFor,
  registerBootConfigHandler,
} from '../../src/region/boot-config.js';
import { GetBootConfig } from '../../src/rpc/commands/boot.js';
import { HandlerRegistry } from '../../src/rpc/handlers.js';
import { putBootResource } from '../../src/storage/boot-resources.js';
import { hashBootToken, machineIdForBootToken } from '../../src/storage/boot-tokens.js';
import { listEvents } from '../../src/storage/events.js';
import {
  findMachineByMac,
  MACHINE_STATUSES,
  setMachineStatus,
  updateMachine,
} from '../../src/storage/machines.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-bootcfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const db = openRegionDatabase(dir, silentLogger);
after(() => db.close());
const { config } = loadConfig({ env: {} });
const opts = { db, config, logger: silentLogger };

const K = 'a'.repeat(64);
const I = 'b'.repeat(64);
putBootResource(db, {
  name: 'kiln/ephemeral',
  architecture: 'amd64/generic',
  kind: 'ephemeral',
  files: [
    { name: 'vmlinuz', filetype: 'kernel', sha256: K, size: 10, path: `images/sha256/${K}` },
    { name: 'initrd.img', filetype: 'initrd', sha256: I, size: 20, path: `images/sha256/${I}` },
  ],
});

const ask = (mac: string, extra: Partial<Parameters<typeof getBootConfig>[1]> = {}) =>
  getBootConfig(opts, {
    mac,
    arch: 'amd64',
    local_ip: '10.9.0.1',
    remote_ip: '10.9.0.50',
    bios_boot_method: 'ipxe',
    ...extra,
  });

function tokenOf(params: string): string {
  const m = /(?:^| )kiln\.token=(\S+)/.exec(params);
  assert.ok(m, params);
  return m[1]!;
}

test('an unknown MAC becomes a NEW machine with that MAC and arch, answered enlist with kernel, initrd and a token', () => {
  const a = ask('52:54:00:00:01:01');
  assert.equal(a.purpose, 'enlist');
  assert.deepEqual(a.kernel, { filename: 'vmlinuz', sha256: K, size: 10 });
  assert.deepEqual(a.initrd, { filename: 'initrd.img', sha256: I, size: 20 });
  assert.equal(a.metadata_url, 'http://10.9.0.1:5240/metadata/v1/hardware');
  assert.match(
    a.kernel_params,
    /^console=tty0 console=ttyS0,115200 kiln\.metadata_url=http:\/\/10\.9\.0\.1:5240\/metadata\/v1\/hardware kiln\.token=[A-Za-z0-9_-]{43}$/,
  );
  const m = findMachineByMac(db, '52:54:00:00:01:01')!;
  assert.equal(m.status, 'NEW');
  assert.equal(m.architecture, 'amd64/generic');
  assert.equal(m.boot_mac, '52:54:00:00:01:01');
  assert.equal(a.system_id, m.system_id);
  assert.equal(a.hostname, m.hostname);

  const token = tokenOf(a.kernel_params);
  assert.equal(machineIdForBootToken(db, token), m.id);
  // Only the hash is stored.
  const rows = db.prepare('SELECT token_hash FROM boot_tokens').all() as Array<{ token_hash: string }>;
  assert.ok(rows.some((r) => r.token_hash === hashBootToken(token)));
  assert.ok(!JSON.stringify(rows).includes(token));

  const events = listEvents(db, m.id).items.map((e) => e.type);
  assert.deepEqual(events, ['enlist.created', 'boot.config']);
});

test('asking again for a machine still enlisting answers enlist with a new token; both tokens stay valid', () => {
  const a = ask('52:54:00:00:01:02');
  const b = ask('52:54:00:00:01:02');
  assert.equal(b.purpose, 'enlist');
  assert.equal(a.system_id, b.system_id);
  assert.notEqual(tokenOf(a.kernel_params), tokenOf(b.kernel_params));
  assert.ok(machineIdForBootToken(db, tokenOf(a.kernel_params)));
  assert.ok(machineIdForBootToken(db, tokenOf(b.kernel_params)));
});

test('purpose follows the status (MAAS names)', () => {
  const expect: Record<string, string> = {
    COMMISSIONING: 'commissioning',
    TESTING: 'commissioning',
    RESCUE_MODE: 'commissioning',
    ENTERING_RESCUE_MODE: 'commissioning',
    DEPLOYING: 'xinstall',
    DEPLOYED: 'local',
    READY: 'poweroff',
    ALLOCATED: 'poweroff',
    BROKEN: 'poweroff',
    FAILED_COMMISSIONING: 'poweroff',
  };
  for (const status of MACHINE_STATUSES) {
    const want = status === 'NEW' ? 'enlist' : (expect[status] ?? 'poweroff');
    assert.equal(purposeFor({ status, hardware: null }), want, status);
  }
  assert.equal(purposeFor({ status: 'NEW', hardware: { arch: 'amd64' } }), 'poweroff');

  const a = ask('52:54:00:00:01:03');
  setMachineStatus(db, a.system_id, 'DEPLOYED');
  const local = ask('52:54:00:00:01:03');
  assert.equal(local.purpose, 'local');
  assert.equal(local.kernel, null);
  assert.equal(local.kernel_params, '');
  setMachineStatus(db, a.system_id, 'COMMISSIONING');
  assert.equal(ask('52:54:00:00:01:03').purpose, 'commissioning');
  setMachineStatus(db, a.system_id, 'NEW');
  updateMachine(db, a.system_id, { hardware: { arch: 'amd64' } });
  assert.equal(ask('52:54:00:00:01:03').purpose, 'poweroff');
});

test('no image for the architecture is a named error and a timeline event, and nothing else breaks', () => {
  assert.throws(
    () => ask('52:54:00:00:01:04', { arch: 'arm64' }),
    (e: { code?: string }) => e.code === 'KILN_ERR_BOOT_NO_IMAGE',
  );
  const m = findMachineByMac(db, '52:54:00:00:01:04')!;
  assert.equal(m.architecture, 'arm64/generic');
  assert.ok(listEvents(db, m.id).items.some((e) => e.type === 'boot.no_image' && e.level === 'error'));
});

test('region.url, when set, is where machines report', () => {
  const { config: c } = loadConfig({ env: { KILN_REGION_URL: 'http://region.example:5240/' } });
  assert.equal(metadataUrlFor(c, '10.0.0.1'), 'http://region.example:5240/metadata/v1/hardware');
  assert.equal(metadataUrlFor(config, 'fd00::1'), 'http://[fd00::1]:5240/metadata/v1/hardware');
});

test('the handler registers on the region registry and answers through it', async () => {
  const reg = new HandlerRegistry('region');
  registerBootConfigHandler(reg, opts);
  const h = reg.get(GetBootConfig.name)!;
  const args = GetBootConfig.args.parse({
    mac: '52:54:00:00:01:05',
    arch: 'amd64',
    local_ip: '10.9.0.1',
    remote_ip: '10.9.0.51',
  });
  const r = GetBootConfig.result.parse(
    await h.handler(args, { signal: new AbortController().signal, peer: {}, logger: silentLogger }),
  );
  assert.equal(r.purpose, 'enlist');
});
