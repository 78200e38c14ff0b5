import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendEvent, listEvents } from '../../src/storage/events.js';
import { createMachine } from '../../src/storage/machines.js';
import { tempRegionDb } from './helpers.js';

test('a held boot hop keeps the time it happened; implausible times fall back to now', () => {
  const { db, cleanup } = tempRegionDb();
  try {
    const m = createMachine(db, { hostname: 'timeline', architecture: 'amd64/generic' });
    const before = Date.now();
    const earlier = new Date(before - 5_000).toISOString();
    const e1 = appendEvent(db, m.id, { type: 'tftp.file', level: 'info', text: 'held hop', at: earlier });
    assert.equal(e1.created_at, earlier);
    for (const at of ['not a time', new Date(before + 3_600_000).toISOString(), '1999-01-01T00:00:00Z']) {
      const e = appendEvent(db, m.id, { type: 'x', level: 'info', text: at, at });
      const t = Date.parse(e.created_at);
      assert.ok(t >= before && t <= Date.now(), `${at} → ${e.created_at}`);
    }
    const page = listEvents(db, m.id, { limit: 10 });
    assert.equal(page.items.length, 4);
  } finally {
    cleanup();
  }
});
