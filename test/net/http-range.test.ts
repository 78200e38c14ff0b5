import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  fileEtag,
  ifRangeAllows,
  isNotModified,
  lastModified,
  noneMatchHits,
} from '../../src/net/http-conditional.js';
import { planRange } from '../../src/net/http-range.js';

describe('planRange (RFC 9110 §14)', () => {
  it('serves one byte range, clamped to the file', () => {
    assert.deepEqual(planRange('bytes=0-99', 1000), { kind: 'partial', start: 0, end: 99 });
    assert.deepEqual(planRange('bytes=900-', 1000), { kind: 'partial', start: 900, end: 999 });
    assert.deepEqual(planRange('bytes=-100', 1000), { kind: 'partial', start: 900, end: 999 });
    assert.deepEqual(planRange('bytes=-5000', 1000), { kind: 'partial', start: 0, end: 999 });
    assert.deepEqual(planRange('bytes=990-5000', 1000), { kind: 'partial', start: 990, end: 999 });
    assert.deepEqual(planRange('Bytes= 5-5 ', 1000), { kind: 'partial', start: 5, end: 5 });
    assert.deepEqual(planRange('bytes=0-99999999999999999999', 10), { kind: 'partial', start: 0, end: 9 });
  });

  it('answers 416 for ranges past the end', () => {
    assert.deepEqual(planRange('bytes=1000-', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(planRange('bytes=1000-2000', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(planRange('bytes=-0', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(planRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(planRange('bytes=99999999999999999999-', 10), { kind: 'unsatisfiable' });
  });

  it('ignores what it does not serve: whole file (200)', () => {
    for (const h of [
      undefined,
      'bytes=0-1,5-9',
      'items=0-1',
      'bytes=5-1',
      'bytes=-',
      'bytes=a-b',
      'bytes',
      'bytes=0-1 junk',
      '',
    ]) {
      assert.deepEqual(planRange(h, 1000), { kind: 'full' }, String(h));
    }
  });

  it('fuzz: any header and size gives a plan inside the file, never a throw', () => {
    const header = fc.oneof(
      fc.string(),
      fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `bytes=${a}-${b}`),
      fc.nat().map((n) => `bytes=-${n}`),
      fc.nat().map((n) => `bytes=${n}-`),
      fc.stringMatching(/^bytes=[-0-9, ]{0,30}$/),
    );
    fc.assert(
      fc.property(header, fc.nat({ max: 2 ** 40 }), (h, size) => {
        const p = planRange(h, size);
        if (p.kind === 'partial') {
          assert.ok(Number.isSafeInteger(p.start) && Number.isSafeInteger(p.end));
          assert.ok(p.start >= 0 && p.start <= p.end && p.end < size, JSON.stringify({ h, size, p }));
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('conditional requests (RFC 9110 §13)', () => {
  const mtime = Date.parse('2026-01-02T03:04:05.678Z');
  const etag = fileEtag(1234, mtime);

  it('makes a strong ETag from size and mtime', () => {
    assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.notEqual(fileEtag(1235, mtime), etag);
    assert.notEqual(fileEtag(1234, mtime + 1), etag);
    assert.equal(lastModified(mtime), 'Fri, 02 Jan 2026 03:04:05 GMT');
  });

  it('If-None-Match: weak comparison, lists, *', () => {
    assert.ok(noneMatchHits(etag, etag));
    assert.ok(noneMatchHits(`W/${etag}`, etag));
    assert.ok(noneMatchHits(`"x", ${etag}`, etag));
    assert.ok(noneMatchHits('*', etag));
    assert.ok(!noneMatchHits('"other"', etag));
  });

  it('If-Modified-Since only without If-None-Match; bad dates ignored', () => {
    assert.ok(isNotModified({ 'if-modified-since': lastModified(mtime) }, etag, mtime));
    assert.ok(!isNotModified({ 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }, etag, mtime));
    assert.ok(!isNotModified({ 'if-modified-since': 'yesterday-ish' }, etag, mtime));
    assert.ok(
      !isNotModified({ 'if-none-match': '"nope"', 'if-modified-since': lastModified(mtime) }, etag, mtime),
    );
    assert.ok(!isNotModified({}, etag, mtime));
  });

  it('If-Range: strong tag or exact date', () => {
    assert.ok(ifRangeAllows(undefined, etag, mtime));
    assert.ok(ifRangeAllows(etag, etag, mtime));
    assert.ok(!ifRangeAllows(`W/${etag}`, etag, mtime));
    assert.ok(!ifRangeAllows('"other"', etag, mtime));
    assert.ok(ifRangeAllows(lastModified(mtime), etag, mtime));
    assert.ok(!ifRangeAllows('Thu, 01 Jan 2026 00:00:00 GMT', etag, mtime));
    assert.ok(!ifRangeAllows('garbage', etag, mtime));
  });
});
