// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} here is iPXE/grub script syntax, not a template.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isKilnError } from '../../../src/lib/errors.js';
import { parseMac } from '../../../src/lib/mac.js';
import type { BootPurpose, BootSpec, NetbootFiles } from '../../../src/protocols/bootcfg/boot-spec.js';
import { renderGrubConfig, renderGrubDefault } from '../../../src/protocols/bootcfg/grub.js';
import { renderBootIpxe, renderIpxeScript } from '../../../src/protocols/bootcfg/ipxe.js';
import { renderPxelinuxConfig, renderPxelinuxDefault } from '../../../src/protocols/bootcfg/pxelinux.js';

// Golden files: UPDATE_GOLDEN=1 rewrites them; review the diff before committing.
const GOLDEN = join(import.meta.dirname, 'golden');
function golden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  assert.ok(existsSync(file), `golden file ${name} missing: run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name}`);
}

const mac = parseMac('52:54:00:12:34:56');
const sha = 'ab'.repeat(32);
const sha2 = 'cd'.repeat(32);
function spec(purpose: BootPurpose, params: string[] = []): BootSpec {
  if (purpose === 'local' || purpose === 'poweroff') return { purpose, mac };
  return {
    purpose,
    mac,
    files: {
      kernelUrl: `http://10.9.0.1:5248/images/${sha}/vmlinuz`,
      initrdUrl: `http://10.9.0.1:5248/images/${sha2}/initrd.img`,
      initrdName: 'initrd.img',
      params: [
        'console=ttyS0,115200',
        'kiln.metadata_url=http://10.9.0.1:5240/metadata/v1',
        'kiln.token=Zm9vYmFyYmF6-_q',
        ...params,
      ],
    },
  };
}

test('boot.ipxe chains by MAC with arch and platform, and exits non-zero on failure', () => {
  const s = renderBootIpxe();
  golden('boot.ipxe', s);
  assert.match(s, /^#!ipxe\n/);
  assert.match(
    s,
    /chain --autofree \/boot\/\$\{mac:hexhyp\}\.ipxe\?buildarch=\$\{buildarch\}&platform=\$\{platform\}/,
  );
  assert.doesNotMatch(s, /\b(dhcp|ifconf)\b/, 'no second network configuration (IPv6 wait)');
  assert.match(s, /exit 1\n$/);
});

for (const purpose of ['enlist', 'commissioning', 'xinstall', 'local', 'poweroff'] as const) {
  test(`golden iPXE, pxelinux and grub configs for ${purpose}`, () => {
    golden(`${purpose}.ipxe`, renderIpxeScript(spec(purpose)));
    golden(`${purpose}.pxelinux`, renderPxelinuxConfig(spec(purpose)));
    golden(`${purpose}.grub`, renderGrubConfig(spec(purpose)));
  });
}

test('netboot iPXE script names the initrd on the command line (Debian iPXE under UEFI needs it)', () => {
  const s = renderIpxeScript(spec('enlist'));
  assert.match(
    s,
    /^kernel http:\S+\/vmlinuz initrd=initrd\.img BOOTIF=01-52-54-00-12-34-56 console=ttyS0,115200 /m,
  );
  assert.match(s, /^initrd --name initrd\.img http:\S+\/initrd\.img \|\| goto failed$/m);
  assert.match(s, /^exit 1$/m);
});

test('defaults', () => {
  golden('pxelinux-default', renderPxelinuxDefault());
  golden('grub-default', renderGrubDefault());
});

const hostile = [
  'a\nshell',
  'x=${root}',
  'x=$(reboot)',
  'x=a;halt',
  'x=a || shell',
  'x=a && shell',
  'x="quoted"',
  "x='q'",
  'x=a b',
  'x=a\r',
  'x=a#comment',
  'x=\u00e9',
  '',
  '=value',
  'x=a\0',
  'x=`id`',
];

test('hostile kernel parameters are refused with a ValidationError in every renderer', () => {
  for (const bad of hostile) {
    for (const render of [renderIpxeScript, renderPxelinuxConfig, renderGrubConfig]) {
      assert.throws(
        () => render(spec('enlist', [bad])),
        (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
        JSON.stringify(bad),
      );
    }
  }
});

test('hostile URLs and names are refused', () => {
  const base = spec('commissioning') as Extract<BootSpec, { files: unknown }>;
  const bad: Array<Partial<NetbootFiles>> = [
    { kernelUrl: 'http://h/x\n#!ipxe' },
    { kernelUrl: 'http://h/${x}' },
    { kernelUrl: 'ftp://h/x' },
    { initrdUrl: 'http://h/a b' },
    { initrdUrl: 'http://h/a?x=1&&shell' },
    { initrdName: 'a b' },
    { initrdName: '..' },
    { initrdName: 'x\nshell' },
  ];
  for (const b of bad) {
    const s: BootSpec = { ...base, files: { ...base.files, ...b } };
    assert.throws(
      () => renderIpxeScript(s),
      (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
    );
  }
});

test('property: any parameter either renders as exactly one plain word or is refused', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (p) => {
      let out: string;
      try {
        out = renderIpxeScript(spec('enlist', [p]));
      } catch (e) {
        assert.ok(isKilnError(e, 'KILN_ERR_VALIDATION'));
        return;
      }
      // Rendered: the script has the same lines as without it, and the word has no syntax in it.
      assert.equal(out.split('\n').length, renderIpxeScript(spec('enlist')).split('\n').length);
      assert.doesNotMatch(p, /[\s$;&|'"`#\\]/);
    }),
    { numRuns: 3000 },
  );
});
