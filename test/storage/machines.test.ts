import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import { appendEvent, listEvents } from '../../src/storage/events.js';
import {
  createMachine,
  deleteMachine,
  findMachineByMac,
  getMachine,
  listMachines,
  MASK,
  type MachineInput,
  maskPowerParameters,
  updateMachine,
} from '../../src/storage/machines.js';
import { tempRegionDb } from './helpers.js';

describe('machines repository', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;

  test('create fills defaults, normalises MACs and marks the boot interface', () => {
    const m = createMachine(db, {
      boot_mac: '52-54-00-AA-00-01',
      interfaces: [{ mac: '5254.00aa.0002', name: 'eno2' }],
      tags: ['gpu', 'rack-a'],
    });
    assert.match(m.system_id, /^[a-z0-9]{6}$/);
    assert.match(m.hostname, /^[a-z]+-[a-z]+(-[a-z0-9]{6})?$/);
    assert.equal(m.status, 'NEW');
    assert.equal(m.architecture, 'amd64/generic');
    assert.equal(m.boot_mac, '52:54:00:aa:00:01');
    assert.deepEqual(m.interfaces, [
      { name: 'eth1', mac: '52:54:00:aa:00:01', is_boot: true },
      { name: 'eno2', mac: '52:54:00:aa:00:02', is_boot: false },
    ]);
    assert.deepEqual(m.tags, ['gpu', 'rack-a']);
    assert.equal(findMachineByMac(db, '52:54:00:aa:00:02')?.system_id, m.system_id);
  });

  test('a taken MAC or hostname is a conflict and stores nothing', () => {
    const a = createMachine(db, { hostname: 'dup-a', boot_mac: '02:00:00:00:00:01' });
    const before = listMachines(db, { limit: 1000 }).items.length;
    assert.throws(
      () => createMachine(db, { hostname: 'fresh', boot_mac: '02:00:00:00:00:01' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_CONFLICT') && e.message.includes(a.system_id),
    );
    assert.throws(
      () => createMachine(db, { hostname: 'dup-a', boot_mac: '02:00:00:00:00:02' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_CONFLICT') && /hostname/.test(e.message),
    );
    assert.equal(listMachines(db, { limit: 1000 }).items.length, before);
    assert.equal(findMachineByMac(db, '02:00:00:00:00:02'), undefined);
  });

  test('invalid fields are validation errors naming the field', () => {
    for (const [input, field] of [
      [{ hostname: 'Bad_Name' }, 'hostname'],
      [{ architecture: 'amd64' }, 'architecture'],
      [{ boot_mac: 'zz:zz' }, 'boot_mac'],
      [{ interfaces: [{ mac: 'nope' }] }, 'interfaces.0.mac'],
      [{ tags: ['ok', 'has space'] }, 'tags.1'],
    ] as Array<[MachineInput, string]>) {
      assert.throws(
        () => createMachine(db, input),
        (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION') && e.message.startsWith(`${field}:`),
        field,
      );
    }
  });

  test('update replaces given fields; masked power secrets round-trip unchanged', () => {
    const m = createMachine(db, {
      hostname: 'pw',
      power_type: 'ipmi',
      power_parameters: { power_address: '10.0.0.9', power_user: 'admin', power_pass: 's3cret' },
    });
    const shown = maskPowerParameters(m.power_parameters);
    assert.equal(shown.power_pass, MASK);
    assert.equal(shown.power_user, 'admin');
    const u = updateMachine(db, m.system_id, {
      status: 'READY',
      power_parameters: { ...shown, power_address: '10.0.0.10' },
      tags: ['x'],
      boot_mac: '02:00:00:00:0a:01',
    });
    assert.equal(u.status, 'READY');
    assert.deepEqual(u.power_parameters, {
      power_address: '10.0.0.10',
      power_user: 'admin',
      power_pass: 's3cret',
    });
    assert.deepEqual(u.tags, ['x']);
    assert.equal(u.boot_mac, '02:00:00:00:0a:01');
    assert.ok(u.updated_at >= m.updated_at);
    assert.throws(
      () => updateMachine(db, 'nosuch', { status: 'READY' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_NOT_FOUND'),
    );
  });

  test('events are appended and paged; they go with their machine', () => {
    const m = createMachine(db, { hostname: 'ev' });
    for (let i = 0; i < 25; i++)
      appendEvent(db, m.id, { type: 'test.tick', level: 'info', text: `tick ${i}`, data: { i } });
    const seen: number[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = listEvents(db, m.id, { limit: 10, cursor });
      seen.push(...page.items.map((e) => (e.data as { i: number }).i));
      if (!page.next) break;
      cursor = page.next;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 25 }, (_, i) => i),
    );
    const newest = listEvents(db, m.id, { limit: 1, order: 'desc' });
    assert.equal(newest.items[0]?.text, 'tick 24');
    assert.throws(
      () => appendEvent(db, 999_999, { type: 'x', level: 'info', text: 'y' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_NOT_FOUND'),
    );
    assert.throws(
      () => appendEvent(db, m.id, { type: 'x', level: 'loud' as 'info', text: 'y' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
    );
    deleteMachine(db, m.system_id);
    assert.equal(getMachine(db, m.system_id), undefined);
    assert.equal(
      (db.prepare('SELECT count(*) AS n FROM events WHERE machine_id = ?').get(m.id) as { n: number }).n,
      0,
    );
  });
});

describe('listing 10k machines', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;
  const N = 10_000;
  const statuses = ['NEW', 'READY', 'DEPLOYED', 'BROKEN'] as const;

  before(() => {
    db.transaction(() => {
      for (let i = 0; i < N; i++) {
        createMachine(db, {
          hostname: `node-${String(i).padStart(5, '0')}`,
          status: statuses[i % 4],
          boot_mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
          tags: i % 10 === 0 ? ['tenth'] : [],
          zone: i % 2 ? 'odd' : 'even',
        });
      }
    })();
  });

  function walk(opts: Parameters<typeof listMachines>[1]): string[] {
    const out: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = listMachines(db, { ...opts, cursor });
      out.push(...page.items.map((m) => m.hostname));
      if (!page.next) return out;
      cursor = page.next;
    }
  }

  test('a full walk in pages of 1000 visits every machine once, in order', () => {
    const all = walk({ limit: 1000 });
    assert.equal(all.length, N);
    assert.equal(new Set(all).size, N);
    assert.deepEqual(all, [...all].sort());
  });

  test('descending hostname walk with a filter', () => {
    const got = walk({ limit: 333, sort: '-hostname', status: ['READY'] });
    assert.equal(got.length, N / 4);
    assert.deepEqual(got, [...got].sort().reverse());
  });

  test('sorting by a non-unique column pages without gaps or repeats', () => {
    const got = walk({ limit: 97, sort: 'status' });
    assert.equal(new Set(got).size, N);
  });

  test('filters combine', () => {
    const got = walk({ limit: 1000, tag: 'tenth', zone: 'even', status: ['NEW', 'READY'] });
    // i % 10 == 0 → even zone; status NEW when i % 4 == 0, READY when i % 4 == 1 (never with i even)
    assert.equal(got.length, N / 20);
    assert.deepEqual(walk({ mac: '02:00:00:00:00:05' }), ['node-00005']);
  });

  test('a cursor made for another sort, or garbage, is refused', () => {
    const page = listMachines(db, { limit: 5, sort: 'hostname' });
    assert.throws(
      () => listMachines(db, { sort: 'status', cursor: page.next! }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
    );
    for (const bad of ['!!', 'bm90IGpzb24', Buffer.from('[1,2]').toString('base64url')]) {
      assert.throws(
        () => listMachines(db, { cursor: bad }),
        (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
      );
    }
    assert.throws(
      () => listMachines(db, { sort: 'power_parameters' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
    );
  });
});
