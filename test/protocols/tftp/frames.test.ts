import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameLayout } from '../../../src/protocols/tftp/frames.js';
import { decodePacket, encodeData, Opcode } from '../../../src/protocols/tftp/packet.js';

/** Every packet of a whole-file frame, as the codec would have encoded it one by one. */
function checkWhole(data: Buffer, blksize: number): void {
  const layout = new FrameLayout(data.length, blksize);
  const frame = layout.frameFrom(data, 1, layout.last);
  assert.equal(layout.last, Math.floor(data.length / blksize) + 1);
  for (let b = 1; b <= layout.last; b++) {
    const expected = encodeData(
      b % 65536,
      data.subarray((b - 1) * blksize, Math.min(b * blksize, data.length)),
    );
    assert.ok(layout.packet(frame, 1, b).equals(expected), `block ${b}`);
  }
  assert.equal(frame.length, (layout.last - 1) * (blksize + 4) + 4 + layout.payloadLength(layout.last));
}

test('a framed file is the same bytes as DATA packets encoded one by one', () => {
  checkWhole(randomBytes(100_000), 1432);
  checkWhole(randomBytes(1468 * 8), 1468); // exact multiple: the last block is empty
  checkWhole(Buffer.alloc(0), 512); // empty file: one empty block
  checkWhole(randomBytes(511), 512);
});

test('block numbers in frame headers wrap from 65535 to 0', () => {
  const data = randomBytes(65_540 * 8 + 3);
  const layout = new FrameLayout(data.length, 8);
  const frame = layout.allocate(65_534, 5);
  const blocks = [65_534, 65_535, 65_536, 65_537, 65_538].map((b) => {
    const p = decodePacket(layout.packet(frame, 65_534, b));
    assert.equal(p.op, Opcode.DATA);
    return p.op === Opcode.DATA ? p.block : -1;
  });
  assert.deepEqual(blocks, [65_534, 65_535, 0, 1, 2]);
});

test('payload areas of a chunk are in file order and sized per block, the last one short', () => {
  const layout = new FrameLayout(10_000, 1468);
  const frame = layout.allocate(5, 3); // blocks 5, 6, 7 (7 is the short last one)
  const parts = layout.payloads(frame, 5, 3);
  assert.deepEqual(
    parts.map((p) => p.length),
    [1468, 1468, 10_000 - 6 * 1468],
  );
  assert.equal(layout.offsetOf(5), 4 * 1468);
  assert.throws(() => layout.allocate(6, 3), RangeError, 'past the last block');
  assert.throws(() => layout.allocate(0, 1), RangeError);
  assert.throws(() => new FrameLayout(10, 0), RangeError);
});

test('property: any size, blksize and chunk give packets equal to encodeData', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.integer({ min: 1, max: 1500 }),
      fc.nat(),
      fc.nat(),
      (bytes, blksize, a, b) => {
        const data = Buffer.from(bytes);
        const layout = new FrameLayout(data.length, blksize);
        const first = 1 + (a % layout.last);
        const count = 1 + (b % (layout.last - first + 1));
        const frame = layout.allocate(first, count);
        const parts = layout.payloads(frame, first, count);
        for (let i = 0; i < count; i++) {
          const off = layout.offsetOf(first + i);
          parts[i]!.set(data.subarray(off, off + parts[i]!.length));
        }
        for (let blk = first; blk < first + count; blk++) {
          const payload = data.subarray((blk - 1) * blksize, Math.min(blk * blksize, data.length));
          assert.ok(layout.packet(frame, first, blk).equals(encodeData(blk % 65536, payload)));
        }
      },
    ),
    { numRuns: 500 },
  );
});
