import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../../../src/lib/errors.js';
import { Opt, type Options } from '../../../src/protocols/dhcp4/options.js';
import { encodeUserClass } from '../../../src/protocols/dhcp4/user-class.js';
import { clientArch } from '../../../src/protocols/pxe/arch.js';
import { classifyBootClient } from '../../../src/protocols/pxe/classify.js';

const opts = (entries: Array<[number, Buffer | string]>): Options =>
  new Map(entries.map(([k, v]) => [k, typeof v === 'string' ? Buffer.from(v, 'latin1') : v]));

test('option 93 maps to firmware and first-stage loader', () => {
  assert.deepEqual(
    [0, 7, 9, 16, 11].map((c) => clientArch(c).loader),
    ['undionly.kpxe', 'ipxe.efi', 'ipxe.efi', 'ipxe.efi', 'bootaa64.efi'],
  );
  assert.equal(clientArch(16).firmware, 'uefi-http');
  assert.equal(clientArch(4242).firmware, 'other');
  assert.equal(clientArch(4242).loader, null);
});

test('iPXE is recognised by raw or RFC 3004 user class, or by option 175', () => {
  assert.equal(classifyBootClient(opts([[Opt.UserClass, 'iPXE']])).kind, 'ipxe');
  assert.equal(classifyBootClient(opts([[Opt.UserClass, encodeUserClass(['x', 'iPXE'])]])).kind, 'ipxe');
  assert.equal(classifyBootClient(opts([[Opt.Ipxe, Buffer.from([0xff])]])).kind, 'ipxe');
  assert.equal(
    classifyBootClient(opts([[Opt.VendorClass, 'HTTPClient:Arch:00016:UNDI:003000']])).kind,
    'uefi-http',
  );
});

test('the architecture falls back to option 60 when 93 is missing', () => {
  const c = classifyBootClient(opts([[Opt.VendorClass, 'PXEClient:Arch:00007:UNDI:003000']]));
  assert.equal(c.kind, 'pxe');
  assert.equal(c.arch?.code, 7);
});

test('a malformed option 93 is a DecodeError; any option map classifies or throws DecodeError', () => {
  assert.throws(() => classifyBootClient(opts([[Opt.ClientSystemArch, Buffer.from([0])]])), DecodeError);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(60, 77, 93, 97, 175), fc.uint8Array({ maxLength: 40 }))),
      (entries) => {
        try {
          classifyBootClient(opts(entries.map(([k, v]) => [k, Buffer.from(v)])));
        } catch (err) {
          assert.ok(err instanceof DecodeError);
        }
      },
    ),
  );
});
