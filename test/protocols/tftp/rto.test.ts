import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RtoEstimator } from '../../../src/protocols/tftp/rto.js';

test('before any sample the timeout is the configured one', () => {
  assert.equal(new RtoEstimator({ minMs: 50, maxMs: 1000 }).rto, 1000);
});

test('the first sample sets SRTT = R and RTTVAR = R/2 (RFC 6298 §2.2), so RTO = 3R within bounds', () => {
  const e = new RtoEstimator({ minMs: 50, maxMs: 1000 });
  e.sample(100);
  assert.equal(e.smoothed, 100);
  assert.equal(e.rto, 300);
  const lan = new RtoEstimator({ minMs: 50, maxMs: 1000 });
  lan.sample(0.2);
  assert.equal(lan.rto, 50, 'a LAN round trip gets the floor');
  const slow = new RtoEstimator({ minMs: 50, maxMs: 1000 });
  slow.sample(900);
  assert.equal(slow.rto, 1000, 'never above the configured timeout');
});

test('steady round trips converge towards SRTT with a shrinking variance', () => {
  const e = new RtoEstimator({ minMs: 1, maxMs: 10_000 });
  for (let i = 0; i < 200; i++) e.sample(200);
  assert.ok(Math.abs(e.smoothed! - 200) < 1);
  assert.ok(e.rto >= 200 && e.rto <= 210, `rto ${e.rto}`);
});

test('a jump in round trip raises the timeout at once through the variance', () => {
  const e = new RtoEstimator({ minMs: 1, maxMs: 10_000 });
  for (let i = 0; i < 50; i++) e.sample(10);
  const before = e.rto;
  e.sample(200);
  assert.ok(e.rto > 200, `rto ${e.rto} after a 200 ms sample (was ${before})`);
});

test('backoff doubles up to the cap and stays until the next sample (RFC 6298 §5.5, §5.7)', () => {
  const e = new RtoEstimator({ minMs: 50, maxMs: 1000 });
  e.sample(1);
  assert.equal(e.rto, 50);
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    e.backoff(4000);
    seen.push(e.rto);
  }
  assert.deepEqual(seen, [100, 200, 400, 800, 1600, 3200, 4000, 4000]);
  e.sample(1);
  assert.ok(e.rto <= 60, `a fresh sample brings it back (rto ${e.rto})`);
});

test('nonsense samples are ignored', () => {
  const e = new RtoEstimator({ minMs: 50, maxMs: 1000 });
  for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) e.sample(bad);
  assert.equal(e.smoothed, undefined);
  assert.equal(e.rto, 1000);
});

test('property: the timeout always stays within [min, max] for any samples, within [min, cap] with backoff', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 500 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.array(fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(-1)), { maxLength: 50 }),
      fc.integer({ min: 0, max: 40 }),
      (min, extra, samples, backoffs) => {
        const max = min + extra;
        const e = new RtoEstimator({ minMs: min, maxMs: max });
        for (const s of samples) {
          e.sample(s);
          assert.ok(e.rto >= min && e.rto <= max);
        }
        for (let i = 0; i < backoffs; i++) e.backoff(4000);
        assert.ok(e.rto >= min && e.rto <= Math.max(4000, max));
      },
    ),
  );
});
