import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter } from '../../src/lib/bytes.js';
import { DecodeError } from '../../src/lib/errors.js';
import { cidrContains, intToIp, ipToInt, parseCidr } from '../../src/lib/ipv4.js';
import { macDashes, macFromBytes, macToBytes, parseMac } from '../../src/lib/mac.js';

test('ByteReader refuses to read past the end with a DecodeError', () => {
  const r = new ByteReader(Buffer.from([1, 2, 3]));
  assert.equal(r.u16(), 0x0102);
  assert.throws(() => r.u16('field'), DecodeError);
  assert.equal(r.u8(), 3);
  assert.throws(() => r.u8(), DecodeError);
  assert.throws(() => new ByteReader(Buffer.alloc(2)).bytes(-1), DecodeError);
});

test('ByteWriter and ByteReader round-trip any sequence of fields', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(1, 2, 4), fc.nat({ max: 0xffffffff }))), (fields) => {
      const w = new ByteWriter(1);
      for (const [size, v] of fields) {
        if (size === 1) w.u8(v);
        else if (size === 2) w.u16(v);
        else w.u32(v);
      }
      const r = new ByteReader(w.finish());
      for (const [size, v] of fields) {
        const got = size === 1 ? r.u8() : size === 2 ? r.u16() : r.u32();
        assert.equal(got, size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v >>> 0);
      }
      assert.equal(r.remaining, 0);
    }),
  );
});

test('MAC forms are normalised, junk is refused', () => {
  assert.equal(parseMac('AA-BB-CC-DD-EE-FF'), 'aa:bb:cc:dd:ee:ff');
  assert.equal(parseMac('aabb.ccdd.eeff'), 'aa:bb:cc:dd:ee:ff');
  assert.equal(macDashes(parseMac('52:54:00:12:34:56')), '52-54-00-12-34-56');
  assert.equal(macFromBytes(macToBytes(parseMac('52:54:00:12:34:56'))), '52:54:00:12:34:56');
  for (const bad of [
    '',
    'aa:bb:cc:dd:ee',
    'aa:bb:cc:dd:ee:fg',
    "aa:bb:cc:dd:ee:ff'; drop",
    'aa:bb-cc:dd:ee:ff',
  ]) {
    assert.throws(() => parseMac(bad), /not a MAC/);
  }
});

test('IPv4 and CIDR parsing', () => {
  assert.equal(intToIp(ipToInt('10.1.2.3')), '10.1.2.3');
  assert.throws(() => ipToInt('10.1.2'), /not an IPv4/);
  assert.throws(() => ipToInt('10.1.2.256'), /not an IPv4/);
  assert.throws(() => ipToInt('010.1.2.3'), /not an IPv4/);
  const c = parseCidr('192.168.10.0/24');
  assert.ok(cidrContains(c, ipToInt('192.168.10.77')));
  assert.ok(!cidrContains(c, ipToInt('192.168.11.1')));
  assert.throws(() => parseCidr('192.168.10.1/24'), /host bits/);
  assert.throws(() => parseCidr('192.168.10.0/33'), /prefix/);
});
