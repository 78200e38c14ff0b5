import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DecodeError, isKilnError } from '../../../src/lib/errors.js';
import {
  checkSolicitationSource,
  decodeRouterSolicitation,
  encodeRouterSolicitation,
} from '../../../src/protocols/ndp/router-solicitation.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'ndp');

/** Real solicitations captured by test/fixtures/ndp/capture.sh. */
function captured(): Array<{ name: string; bytes: Buffer }> {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('-rs.hex'))
    .sort()
    .map((f) => ({
      name: f.replace(/\.hex$/, ''),
      bytes: Buffer.from(readFileSync(join(FIXTURES, f), 'utf8').trim(), 'hex'),
    }));
}

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('router solicitation: captured from real solicitors', () => {
  const all = captured();

  test('the captures are there (iPXE, Linux, rdisc6)', () => {
    assert.deepEqual(
      all.map((c) => c.name),
      ['ipxe-bios-rs', 'linux-rs', 'rdisc6-rs'],
    );
  });

  test('iPXE (QEMU BIOS ROM) sends its MAC as the source link-layer address', () => {
    const rs = decodeRouterSolicitation(all.find((c) => c.name === 'ipxe-bios-rs')!.bytes);
    assert.equal(rs.sourceLinkLayer?.toString('hex'), '525400123456');
    assert.equal(rs.options.length, 1);
  });

  test('the Linux kernel sends its MAC too; rdisc6 sends no option', () => {
    const linux = decodeRouterSolicitation(all.find((c) => c.name === 'linux-rs')!.bytes);
    assert.equal(linux.sourceLinkLayer?.length, 6);
    const rdisc6 = decodeRouterSolicitation(all.find((c) => c.name === 'rdisc6-rs')!.bytes);
    assert.equal(rdisc6.sourceLinkLayer, undefined);
    assert.deepEqual(rdisc6.options, []);
  });

  test('re-encoding each capture gives its bytes back, checksum aside (the kernel fills it)', () => {
    for (const c of all) {
      const rs = decodeRouterSolicitation(c.bytes);
      const again = encodeRouterSolicitation(
        rs.sourceLinkLayer ? { sourceLinkLayer: rs.sourceLinkLayer } : {},
      );
      const expected = Buffer.from(c.bytes);
      expected.writeUInt16BE(0, 2);
      assert.equal(again.toString('hex'), expected.toString('hex'), c.name);
    }
  });
});

describe('router solicitation: RFC 4861 §6.1.1 validity', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['shorter than 8 octets', '85000000000000', /< 8/],
    ['empty', '', /< 8/],
    ['another ICMPv6 type', '86000000 00000000', /not a router solicitation/],
    ['code not 0', '85010000 00000000', /code 1/],
    ['an option of length 0', '85000000 00000000 0100 000000000000', /length 0/],
    ['an option longer than the message', '85000000 00000000 0102 525400123456', /needs 14 bytes/],
    ['one stray byte after the fixed part', '85000000 00000000 01', /truncated/],
  ];
  for (const [what, h, msg] of bad) {
    test(`${what} is a DecodeError`, () => {
      assert.throws(
        () => decodeRouterSolicitation(hex(h)),
        (err: unknown) => err instanceof DecodeError && msg.test(err.message),
      );
    });
  }

  test('unknown options and a non-zero Reserved field are accepted (§4.1, §4.6)', () => {
    const rs = decodeRouterSolicitation(hex('85000000 ffffffff 2a01 aabbccddeeff 0101 525400abcdef'));
    assert.equal(rs.options.length, 2);
    assert.equal(rs.options[0]!.type, 42);
    assert.equal(rs.sourceLinkLayer?.toString('hex'), '525400abcdef');
  });

  test('from :: a source link-layer address option makes it invalid', () => {
    const withSlla = decodeRouterSolicitation(hex('85000000 00000000 0101 525400123456'));
    assert.throws(() => checkSolicitationSource(withSlla, true), DecodeError);
    checkSolicitationSource(withSlla, false);
    checkSolicitationSource(decodeRouterSolicitation(hex('85000000 00000000')), true);
  });

  test('fuzz: random bytes give a solicitation or a DecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, asRs) => {
        // Half the cases start like a real RS so the option walk gets exercised, not just the type.
        if (asRs && bytes.length >= 2) {
          bytes[0] = 133;
          bytes[1] = 0;
        }
        try {
          const rs = decodeRouterSolicitation(bytes);
          for (const o of rs.options) assert.equal((o.body.length + 2) % 8, 0);
        } catch (err) {
          if (!isKilnError(err, 'KILN_ERR_DECODE')) throw err;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
