import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../../../src/lib/errors.js';
import { fromNetascii, toNetascii } from '../../../src/protocols/tftp/netascii.js';
import { DEFAULT_LIMITS, negotiate } from '../../../src/protocols/tftp/options.js';
import { decodePacket, encodePacket, Opcode, type TftpPacket } from '../../../src/protocols/tftp/packet.js';

function decodesOrDecodeError(buf: Uint8Array): void {
  try {
    decodePacket(buf);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
}

test('fuzz: random bytes give a packet or a DecodeError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => decodesOrDecodeError(b)),
    { numRuns: 20_000 },
  );
});

test('fuzz: random bytes behind each opcode give a packet or a DecodeError', () => {
  const body = fc.array(
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x41, 0x2e)),
    {
      maxLength: 200,
    },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 8 }), body, (op, rest) =>
      decodesOrDecodeError(Uint8Array.from([0, op, ...rest])),
    ),
    { numRuns: 20_000 },
  );
});

const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0'));
const option = fc.record({
  name: text,
  value: fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0')),
});
const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
  fc.record({
    op: fc.constantFrom(Opcode.RRQ, Opcode.WRQ),
    filename: text,
    mode: text,
    options: fc.array(option, { maxLength: 5 }),
  }),
  fc.record({
    op: fc.constant(Opcode.DATA),
    block: fc.integer({ min: 0, max: 65535 }),
    data: fc.uint8Array({ maxLength: 1500 }),
  }),
  fc.record({ op: fc.constant(Opcode.ACK), block: fc.integer({ min: 0, max: 65535 }) }),
  fc.record({
    op: fc.constant(Opcode.ERROR),
    code: fc.integer({ min: 0, max: 65535 }),
    message: fc.string({ maxLength: 60 }).filter((s) => !s.includes('\0')),
  }),
  fc.record({ op: fc.constant(Opcode.OACK), options: fc.array(option, { minLength: 1, maxLength: 5 }) }),
);

test('fuzz: every packet round-trips through encode and decode', () => {
  fc.assert(
    fc.property(packet, (p) => {
      const back = decodePacket(encodePacket(p));
      if (p.op === Opcode.DATA && back.op === Opcode.DATA) {
        assert.equal(back.block, p.block);
        assert.deepEqual(Buffer.from(back.data), Buffer.from(p.data));
      } else {
        // fast-check builds null-prototype records; compare plain copies.
        assert.deepEqual(back, JSON.parse(JSON.stringify(p)));
      }
    }),
    { numRuns: 5_000 },
  );
});

test('fuzz: negotiation of arbitrary options stays within the RFC ranges and our limits', () => {
  fc.assert(
    fc.property(fc.array(option, { maxLength: 8 }), fc.nat(), (options, size) => {
      const n = negotiate(options, DEFAULT_LIMITS, size);
      assert.ok(n.blksize >= 8 && n.blksize <= 65464);
      assert.ok(n.windowsize >= 1 && n.windowsize <= DEFAULT_LIMITS.maxWindowsize);
      assert.ok(n.blksize * n.windowsize <= Math.max(DEFAULT_LIMITS.maxWindowBytes, n.blksize));
      if (n.timeoutMs !== undefined) assert.ok(n.timeoutMs >= 1000 && n.timeoutMs <= 255_000);
    }),
    { numRuns: 5_000 },
  );
});

test('fuzz: netascii decoding undoes encoding', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      assert.deepEqual(fromNetascii(toNetascii(b)), Buffer.from(b));
    }),
  );
});
