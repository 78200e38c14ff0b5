import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../../src/lib/errors.js';
import { decodeFrames, encodeFrame, FrameDecoder, FrameTooLargeError } from '../../src/rpc/frame.js';

test('frames round-trip, whole or split at every byte', () => {
  const msgs = [
    { t: 'c', i: 1, m: 'Ping', a: { echo: 'x' } },
    { t: 'r', i: 1, r: { bytes: Buffer.from([1, 2, 3]) } },
  ];
  const wire = Buffer.concat(msgs.map((m) => encodeFrame(m)));
  assert.deepEqual(decodeFrames(wire), msgs);
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new FrameDecoder();
    const out = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assert.deepEqual(out, msgs);
    assert.equal(d.pendingBytes, 0);
  }
});

test('an oversized frame is refused from its header, before its payload arrives', () => {
  const d = new FrameDecoder(1024);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(1025);
  assert.throws(
    () => d.push(head),
    (e: unknown) => e instanceof FrameTooLargeError && e.code === 'KILN_ERR_RPC_FRAME_TOO_LARGE',
  );
  assert.throws(() => encodeFrame({ s: 'x'.repeat(2000) }, 1024), FrameTooLargeError);
});

test('empty frames, trailing values and truncation are DecodeErrors', () => {
  assert.throws(() => decodeFrames(Buffer.from([0, 0, 0, 0])), DecodeError);
  const two = Buffer.from([0, 0, 0, 2, 0x01, 0x02]);
  assert.throws(() => decodeFrames(two), /more than one/);
  assert.throws(() => decodeFrames(encodeFrame({ a: 1 }).subarray(0, 6)), /truncated/);
});

test('fuzz: random bytes only ever give messages or a DecodeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 300 }), (bytes, cut) => {
      const d = new FrameDecoder(4096);
      try {
        d.push(bytes.subarray(0, cut));
        d.push(bytes.subarray(cut));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }),
    { numRuns: 5000 },
  );
  // Valid headers around random payloads reach the msgpack decoder itself.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (payload) => {
      const frame = Buffer.concat([Buffer.alloc(4), payload]);
      frame.writeUInt32BE(payload.length);
      try {
        decodeFrames(frame);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }),
    { numRuns: 5000 },
  );
});
