// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} here is iPXE script syntax, not a template.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../src/lib/logger.js';
import { type Mac, parseMac } from '../../src/lib/mac.js';
import type { BootRequest, BootSource } from '../../src/net/boot-source.js';
import { BootTimeline } from '../../src/rack/boot-timeline.js';
import { type BootConfig, type BootConfigArgs, Booter } from '../../src/rack/booter.js';

const top = mkdtempSync(join(tmpdir(), 'kiln-booter-'));
after(() => rmSync(top, { recursive: true, force: true }));
const loaders = join(top, 'loaders');
const modules = join(top, 'modules');
mkdirSync(loaders);
mkdirSync(modules);
writeFileSync(join(loaders, 'undionly.kpxe'), 'UNDI');
writeFileSync(join(modules, 'ldlinux.c32'), 'LDLINUX');
writeFileSync(join(top, 'secret'), 'S');
symlinkSync(join(top, 'secret'), join(loaders, 'escape'));
const kernelSha = '1'.repeat(64);
const initrdSha = '2'.repeat(64);
writeFileSync(join(top, 'kernel'), 'K');

const mac = parseMac('52:54:00:aa:bb:01');

function answer(purpose: BootConfig['purpose'], over: Partial<BootConfig> = {}): BootConfig {
  const net = purpose !== 'local' && purpose !== 'poweroff';
  return {
    system_id: 'abc123',
    hostname: 'able-fox',
    domain: 'maas',
    purpose,
    arch: 'amd64',
    subarch: 'generic',
    osystem: 'kiln',
    release: 'ephemeral',
    kernel: net ? { filename: 'vmlinuz', sha256: kernelSha } : null,
    initrd: net ? { filename: 'initrd.img', sha256: initrdSha } : null,
    kernel_params: net
      ? 'console=ttyS0 kiln.metadata_url=http://10.9.0.1:5240/metadata/v1 kiln.token=tok'
      : '',
    metadata_url: net ? 'http://10.9.0.1:5240/metadata/v1' : null,
    ...over,
  };
}

function setup(
  opts: { purpose?: BootConfig['purpose']; over?: Partial<BootConfig>; now?: () => number } = {},
) {
  const asks: BootConfigArgs[] = [];
  const sent: Array<{ mac?: string; type: string; text: string }> = [];
  const known = new Set<string>();
  const timeline = new BootTimeline({
    logger: silentLogger,
    send: async (a) => {
      const recorded = known.has(a.mac!);
      if (recorded) sent.push({ mac: a.mac, type: a.type, text: a.text });
      return { recorded };
    },
  });
  const booter = new Booter({
    logger: silentLogger,
    httpPort: 5248,
    loaders: { 'undionly.kpxe': join(loaders, 'undionly.kpxe'), 'gone.efi': join(loaders, 'gone.efi') },
    moduleDirs: [loaders, modules],
    images: { pathFor: (sha) => (sha === kernelSha ? join(top, 'kernel') : null) },
    timeline,
    macForAddress: (ip) => (ip === '10.9.0.50' ? mac : null),
    now: opts.now,
    source: {
      async getBootConfig(args) {
        asks.push(args);
        known.add(args.mac);
        return answer(opts.purpose ?? 'enlist', opts.over);
      },
    },
  });
  return { booter, asks, sent, timeline };
}

function req(path: string, protocol: 'tftp' | 'http' = 'http'): BootRequest {
  return {
    path,
    protocol,
    remoteAddress: '::ffff:10.9.0.50',
    remotePort: 1234,
    localAddress: '::ffff:10.9.0.1',
  };
}

function text(s: BootSource | null): string {
  assert.ok(s && s.kind === 'content');
  return s.body.toString('utf8');
}

test('boot.ipxe is the fixed chain script, over TFTP and HTTP alike', async () => {
  const { booter } = setup();
  const a = text(await booter.resolve(req('/boot.ipxe')));
  const b = text(await booter.resolve(req('boot.ipxe', 'tftp')));
  assert.equal(a, b);
  assert.match(a, /chain --autofree \/boot\/\$\{mac:hexhyp\}\.ipxe/);
});

test('per-machine iPXE script asks the region with MAC, arch and addresses and renders kernel URLs on the rack', async () => {
  const { booter, asks } = setup();
  const s = text(await booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe?buildarch=i386&platform=pcbios')));
  assert.deepEqual(asks, [
    {
      mac: '52:54:00:aa:bb:01',
      arch: 'amd64',
      local_ip: '10.9.0.1',
      remote_ip: '10.9.0.50',
      bios_boot_method: 'ipxe',
    },
  ]);
  assert.match(
    s,
    new RegExp(`^kernel http://10\\.9\\.0\\.1:5248/images/${kernelSha}/vmlinuz initrd=initrd\\.img `, 'm'),
  );
  assert.match(s, /kiln\.token=tok/);
  assert.match(
    s,
    new RegExp(
      `^initrd --name initrd\\.img http://10\\.9\\.0\\.1:5248/images/${initrdSha}/initrd\\.img`,
      'm',
    ),
  );
});

test('purposes local and poweroff render without files; pxelinux and grub by MAC', async () => {
  assert.match(
    text(await setup({ purpose: 'local' }).booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe'))),
    /^exit 1$/m,
  );
  assert.match(
    text(await setup({ purpose: 'poweroff' }).booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe'))),
    /^poweroff/m,
  );
  const { booter, asks } = setup();
  assert.match(
    text(await booter.resolve(req('pxelinux.cfg/01-52-54-00-aa-bb-01', 'tftp'))),
    /^ {2}KERNEL http:/m,
  );
  assert.equal(asks[0]!.bios_boot_method, 'pxelinux');
  assert.match(
    text(await booter.resolve(req('/grub/grub.cfg-52:54:00:aa:bb:01'))),
    /linux \(http,10\.9\.0\.1:5248\)/,
  );
  assert.match(text(await booter.resolve(req('pxelinux.cfg/default', 'tftp'))), /LOCALBOOT 0/);
  assert.equal(await booter.resolve(req('pxelinux.cfg/0A09003', 'tftp')), null);
});

test('answers are reused briefly and concurrent asks share one call', async () => {
  let t = 1000;
  const { booter, asks } = setup({ now: () => t });
  const path = '/boot/52-54-00-aa-bb-01.ipxe?buildarch=x86_64&platform=efi';
  await Promise.all([booter.resolve(req(path)), booter.resolve(req(path)), booter.resolve(req(path))]);
  assert.equal(asks.length, 1);
  t += 4000;
  await booter.resolve(req(path));
  assert.equal(asks.length, 1);
  t += 2000;
  await booter.resolve(req(path));
  assert.equal(asks.length, 2);
});

test('a failed ask is not cached and surfaces as a thrown error (the server answers 500)', async () => {
  let fail = true;
  const booter = new Booter({
    logger: silentLogger,
    httpPort: 5248,
    images: { pathFor: () => null },
    source: {
      async getBootConfig() {
        if (fail) throw new Error('region unreachable');
        return answer('enlist');
      },
    },
  });
  await assert.rejects(booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe')), /region unreachable/);
  fail = false;
  assert.match(text(await booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe'))), /^kernel /m);
});

test('a netboot answer without kernel or a hostile command line is an error, never a script', async () => {
  await assert.rejects(
    setup({ over: { kernel: null } }).booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe')),
    (e: { code?: string }) => e.code === 'KILN_ERR_BOOT_NO_IMAGE',
  );
  await assert.rejects(
    setup({ over: { kernel_params: 'console=ttyS0\nshell' } }).booter.resolve(
      req('/boot/52-54-00-aa-bb-01.ipxe'),
    ),
    (e: { code?: string }) => e.code === 'KILN_ERR_VALIDATION',
  );
  await assert.rejects(
    setup({ over: { kernel_params: 'x=${foo}' } }).booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe')),
    (e: { code?: string }) => e.code === 'KILN_ERR_VALIDATION',
  );
});

test('loaders and modules come from the loader dirs, confined; images from the cache only', async () => {
  const { booter } = setup();
  assert.deepEqual(await booter.resolve(req('undionly.kpxe', 'tftp')), {
    kind: 'file',
    path: join(loaders, 'undionly.kpxe'),
    contentType: 'application/octet-stream',
  });
  const ld = await booter.resolve(req('/ldlinux.c32'));
  assert.equal(ld?.kind === 'file' && ld.path, join(modules, 'ldlinux.c32'));
  for (const bad of [
    'escape',
    '../secret',
    '/../secret',
    '%2e%2e/secret',
    'missing.efi',
    'gone.efi',
    'a\0b',
  ]) {
    assert.equal(await booter.resolve(req(bad, 'tftp')), null, bad);
  }
  const img = await booter.resolve(req(`/images/${kernelSha}/vmlinuz`));
  assert.equal(img?.kind === 'file' && img.path, join(top, 'kernel'));
  assert.equal(await booter.resolve(req(`/images/${initrdSha}/initrd.img`)), null);
});

test("Debian's real loaders are found with the default loader dirs", async () => {
  const booter = new Booter({
    logger: silentLogger,
    httpPort: 5248,
    images: { pathFor: () => null },
    source: { getBootConfig: async () => answer('local') },
  });
  for (const name of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'lpxelinux.0', 'ldlinux.c32']) {
    const r = await booter.resolve(req(name, 'tftp'));
    assert.equal(r?.kind, 'file', name);
  }
});

test('hops before the machine exists are held and reach the timeline once the region knows it', async () => {
  const { booter, sent, timeline } = setup();
  await booter.resolve(req('undionly.kpxe', 'tftp'));
  await booter.resolve(req('/boot.ipxe'));
  await timeline.flush();
  assert.equal(sent.length, 0);
  await booter.resolve(req('/boot/52-54-00-aa-bb-01.ipxe?buildarch=i386&platform=pcbios'));
  await booter.resolve(req(`/images/${kernelSha}/vmlinuz`));
  await timeline.flush();
  assert.deepEqual(sent.map((e) => e.type).sort(), ['http.image', 'http.script', 'http.script', 'tftp.file']);
  assert.ok(sent.every((e) => e.mac === (mac as Mac)));
  assert.ok(sent.some((e) => /TFTP undionly\.kpxe to 10\.9\.0\.50/.test(e.text)));
});
