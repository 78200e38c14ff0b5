import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isKilnError } from '../../../src/lib/errors.js';
import {
  decodeRouterAdvertisement,
  encodeNullRouterAdvertisement,
} from '../../../src/protocols/ndp/router-advertisement.js';

describe('router advertisement (RFC 4861 §4.2)', () => {
  test('the null RA: 16 octets, lifetime 0, no flags, timers unspecified', () => {
    const ra = encodeNullRouterAdvertisement();
    assert.equal(ra.toString('hex'), '86000000' + '00000000' + '00000000' + '00000000');
  });

  test('with the source link-layer address option: one 8-octet option, nothing else', () => {
    const mac = Buffer.from('0a3da07edab2', 'hex');
    const bytes = encodeNullRouterAdvertisement({ sourceLinkLayer: mac });
    assert.equal(bytes.length, 24);
    assert.equal(bytes.subarray(16).toString('hex'), '01010a3da07edab2');
    const ra = decodeRouterAdvertisement(bytes);
    assert.deepEqual(
      { ...ra, sourceLinkLayer: ra.sourceLinkLayer?.toString('hex'), options: ra.options.length },
      {
        curHopLimit: 0,
        managed: false,
        other: false,
        routerLifetime: 0,
        reachableTime: 0,
        retransTimer: 0,
        sourceLinkLayer: '0a3da07edab2',
        options: 1,
      },
    );
    // No prefix information option (type 3) and no MTU option (type 5): nothing is configured.
    assert.ok(ra.options.every((o) => o.type === 1));
  });

  test('decode reads a router that does configure hosts (flags, lifetime, prefix)', () => {
    const bytes = Buffer.from(
      '8600abcd 40c00708 00000000 00000000 0304 40c0 00278d00 00093a80 00000000 fd000000000000000000000000000000'.replace(
        / /g,
        '',
      ),
      'hex',
    );
    const ra = decodeRouterAdvertisement(bytes);
    assert.equal(ra.curHopLimit, 64);
    assert.equal(ra.managed, true);
    assert.equal(ra.other, true);
    assert.equal(ra.routerLifetime, 0x0708);
    assert.equal(ra.options[0]!.type, 3);
  });

  test('fuzz: random bytes give an advertisement or a DecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.boolean(), (bytes, asRa) => {
        if (asRa && bytes.length >= 2) {
          bytes[0] = 134;
          bytes[1] = 0;
        }
        try {
          decodeRouterAdvertisement(bytes);
        } catch (err) {
          if (!isKilnError(err, 'KILN_ERR_DECODE')) throw err;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
