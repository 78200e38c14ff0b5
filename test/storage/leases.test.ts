import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Mac } from '../../src/lib/mac.js';
import { LeaseDb, type StoredLease } from '../../src/storage/leases.js';
import { openRackDb } from '../../src/storage/rack-db.js';

const lease = (ip: number, mac: string, over: Partial<StoredLease> = {}): StoredLease => ({
  ip,
  mac: mac as Mac,
  clientId: null,
  subnetId: '1',
  expiresAt: 2_000_000,
  hostname: null,
  state: 'active',
  ...over,
});

test('leases are durable only after flush, and survive reopening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-leases-'));
  try {
    const path = join(dir, 'rack.db');
    let db = openRackDb(path);
    let leases = new LeaseDb(db, () => 1000);
    leases.put(lease(10, '02:00:00:00:00:01'));
    assert.equal(leases.byIp(10)?.mac, '02:00:00:00:00:01', 'readable from memory at once');
    db.close();
    db = openRackDb(path);
    assert.equal(new LeaseDb(db).byIp(10), undefined, 'not flushed, not stored');
    leases = new LeaseDb(db, () => 1000);
    for (let i = 0; i < 1000; i++)
      leases.put(
        lease(
          100 + i,
          `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        ),
      );
    leases.put(lease(100, '02:00:00:00:00:00', { state: 'declined' }));
    leases.flush();
    db.close();
    db = openRackDb(path);
    const again = new LeaseDb(db);
    assert.equal(again.list('1').length, 1000);
    assert.equal(again.byIp(100)?.state, 'declined');
    assert.deepEqual(
      again.byMac('02:00:00:00:00:05' as Mac).map((l) => l.ip),
      [105],
    );
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unreported changes are handed out once and a newer change is reported again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-leases-'));
  const db = openRackDb(join(dir, 'rack.db'));
  try {
    let now = 5000;
    const leases = new LeaseDb(db, () => now);
    leases.put(lease(1, '02:00:00:00:00:01'));
    leases.put(lease(2, '02:00:00:00:00:02'));
    const batch = leases.unreported();
    assert.equal(batch.length, 2);
    // Lease 1 changes after it was read but before the region acknowledged: it must be sent again.
    leases.put(lease(1, '02:00:00:00:00:01', { state: 'released' }));
    leases.flush();
    leases.markReported(batch);
    const next = leases.unreported();
    assert.deepEqual(
      next.map((l) => [l.ip, l.state]),
      [[1, 'released']],
    );
    leases.markReported(next);
    assert.equal(leases.unreported().length, 0);
    now = 10_000_000;
    assert.equal(leases.prune(1000), 2);
    assert.equal(leases.byIp(1), undefined);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
