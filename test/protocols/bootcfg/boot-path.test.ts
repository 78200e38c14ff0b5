// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} here is iPXE/grub script syntax, not a template.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseBootPath } from '../../../src/protocols/bootcfg/boot-path.js';

test('names kiln answers, with and without a leading slash', () => {
  assert.deepEqual(parseBootPath('/boot.ipxe'), { kind: 'boot-ipxe' });
  assert.deepEqual(parseBootPath('boot.ipxe'), { kind: 'boot-ipxe' });
  assert.deepEqual(parseBootPath('/boot/52-54-00-12-34-56.ipxe?buildarch=x86_64&platform=efi'), {
    kind: 'ipxe-machine',
    mac: '52:54:00:12:34:56',
    buildarch: 'x86_64',
    platform: 'efi',
  });
  assert.deepEqual(parseBootPath('/boot/52-54-00-12-34-56.ipxe'), {
    kind: 'ipxe-machine',
    mac: '52:54:00:12:34:56',
  });
  assert.deepEqual(parseBootPath('pxelinux.cfg/01-52-54-00-AB-34-56'), {
    kind: 'pxelinux-mac',
    mac: '52:54:00:ab:34:56',
  });
  assert.deepEqual(parseBootPath('pxelinux.cfg/default'), { kind: 'pxelinux-default' });
  assert.deepEqual(parseBootPath('pxelinux.cfg/0A09000'), { kind: 'pxelinux-fallback' });
  assert.deepEqual(parseBootPath('pxelinux.cfg/564d4c2e-1b3f-4f0a-9d0e-123456789abc'), {
    kind: 'pxelinux-fallback',
  });
  assert.deepEqual(parseBootPath('/grub/grub.cfg-52:54:00:12:34:56'), {
    kind: 'grub-mac',
    mac: '52:54:00:12:34:56',
  });
  assert.deepEqual(parseBootPath('grub/grub.cfg'), { kind: 'grub-default' });
  assert.deepEqual(parseBootPath(`/images/${'a'.repeat(64)}/vmlinuz`), {
    kind: 'image',
    sha256: 'a'.repeat(64),
    name: 'vmlinuz',
  });
  assert.deepEqual(parseBootPath('/undionly.kpxe'), { kind: 'file', name: 'undionly.kpxe' });
  assert.deepEqual(parseBootPath('ldlinux.c32'), { kind: 'file', name: 'ldlinux.c32' });
});

test('query values that are not plain words are dropped, traversal is unknown', () => {
  assert.deepEqual(parseBootPath('/boot/52-54-00-12-34-56.ipxe?buildarch=x%0a&platform=${x}'), {
    kind: 'ipxe-machine',
    mac: '52:54:00:12:34:56',
  });
  for (const p of [
    '../etc/passwd',
    '/images/../x',
    `/images/${'a'.repeat(64)}/../x`,
    '',
    'a/b',
    '.hidden',
    '%2e%2e',
  ]) {
    const r = parseBootPath(p);
    assert.ok(r.kind === 'unknown', `${p} → ${r.kind}`);
  }
  assert.equal(parseBootPath('/boot/zz-54-00-12-34-56.ipxe').kind, 'unknown');
  assert.equal(parseBootPath('x'.repeat(5000)).kind, 'unknown');
});

test('fuzz: any string parses to a kind without throwing', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })),
      (s) => {
        const r = parseBootPath(s);
        assert.equal(typeof r.kind, 'string');
        if (r.kind === 'file') assert.doesNotMatch(r.name, /\/|\.\./);
      },
    ),
    { numRuns: 5000 },
  );
});
