import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { isKilnError } from '../../src/lib/errors.js';
import {
  addressesOfMacs,
  type LeaseReport,
  listDiscoveries,
  listSubnetLeases,
  storeLeaseReports,
} from '../../src/storage/dhcp-records.js';
import {
  createReservation,
  deleteReservation,
  listReservations,
  reservationsForDhcp,
} from '../../src/storage/dhcp-reservations.js';
import { getSubnetDhcpSettings, setSubnetDhcpSettings } from '../../src/storage/dhcp-settings.js';
import { listEvents } from '../../src/storage/events.js';
import { createMachine, deleteMachine, updateMachine } from '../../src/storage/machines.js';
import { registerRack } from '../../src/storage/racks.js';
import { createSubnet, deleteSubnet, updateSubnet } from '../../src/storage/subnets.js';
import { tempRegionDb } from './helpers.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

function lease(over: Partial<LeaseReport> & Pick<LeaseReport, 'subnet_id' | 'ip' | 'mac'>): LeaseReport {
  return { state: 'active', expires_at: T0 + HOUR, hostname: null, updated_at: T0, ...over };
}

const code = (c: string) => (err: unknown) => isKilnError(err, c);

describe('lease reports', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;
  const rack = registerRack(
    db,
    { system_id: null, hostname: 'rack1', name: null, version: 't', interfaces: [] },
    T0,
  );
  const subnet = createSubnet(db, {
    cidr: '10.1.0.0/24',
    dynamic_range: { start: '10.1.0.100', end: '10.1.0.200' },
  });
  const other = createSubnet(db, { cidr: '10.2.0.0/24' });
  const machine = createMachine(db, { boot_mac: '52:54:00:00:00:01', hostname: 'known' });
  const dhcpEvents = () =>
    listEvents(db, machine.id, { type: 'dhcp.lease' }).items.map((e) => (e.data as { ip: string }).ip);

  test('a known MAC gets one dhcp.lease event per new lease; renewals and resent batches add none', () => {
    const first = lease({
      subnet_id: subnet.id,
      ip: '10.1.0.100',
      mac: '52:54:00:00:00:01',
      hostname: 'known',
    });
    assert.deepEqual(storeLeaseReports(db, rack.id, [first], T0), {
      stored: 1,
      stale: 0,
      rejected: 0,
      discoveries: 0,
      events: 1,
    });
    // The rack resends the same batch (its ack was lost): nothing changes.
    assert.equal(storeLeaseReports(db, rack.id, [first], T0).stale, 1);
    // Renewal: newer stamp, same MAC, still active.
    const renew = { ...first, expires_at: T0 + 2 * HOUR, updated_at: T0 + 1000 };
    assert.equal(storeLeaseReports(db, rack.id, [renew], T0).stored, 1);
    assert.deepEqual(dhcpEvents(), ['10.1.0.100']);
    // An older report arriving late does not undo the renewal.
    assert.equal(storeLeaseReports(db, rack.id, [{ ...first, updated_at: T0 + 500 }], T0).stale, 1);
    const row = listSubnetLeases(db, subnet.id, {}, T0).items[0]!;
    assert.equal(row.expires_at, new Date(T0 + 2 * HOUR).toISOString());
    assert.equal(row.machine, machine.system_id);
    assert.equal(row.rack, rack.system_id);
    // Released, then leased again: a new lease, a second event.
    storeLeaseReports(db, rack.id, [{ ...renew, state: 'released', updated_at: T0 + 2000 }], T0);
    storeLeaseReports(db, rack.id, [{ ...renew, updated_at: T0 + 3000 }], T0);
    assert.deepEqual(dhcpEvents(), ['10.1.0.100', '10.1.0.100']);
  });

  test('unknown MACs become discoveries (first and last seen); ones that enlist drop out', () => {
    const r = storeLeaseReports(
      db,
      rack.id,
      [
        lease({
          subnet_id: subnet.id,
          ip: '10.1.0.150',
          mac: 'AA-BB-CC-00-00-01',
          hostname: 'pxe',
          updated_at: T0 + 10,
        }),
        lease({ subnet_id: subnet.id, ip: '10.1.0.151', mac: 'aa:bb:cc:00:00:02', updated_at: T0 + 20 }),
      ],
      T0 + HOUR,
    );
    assert.equal(r.discoveries, 2);
    storeLeaseReports(
      db,
      rack.id,
      [lease({ subnet_id: subnet.id, ip: '10.1.0.152', mac: 'aa:bb:cc:00:00:01', updated_at: T0 + 30 })],
      T0 + HOUR,
    );
    const d = listDiscoveries(db).items;
    assert.deepEqual(
      d.map((x) => [x.mac, x.ip, x.hostname, x.rack, x.subnet_id]),
      [
        ['aa:bb:cc:00:00:01', '10.1.0.152', 'pxe', rack.system_id, subnet.id],
        ['aa:bb:cc:00:00:02', '10.1.0.151', null, rack.system_id, subnet.id],
      ],
    );
    assert.equal(d[0]!.first_seen, new Date(T0 + 10).toISOString());
    assert.equal(d[0]!.last_seen, new Date(T0 + 30).toISOString());
    const m = createMachine(db, { boot_mac: 'aa:bb:cc:00:00:02' });
    assert.deepEqual(
      listDiscoveries(db).items.map((x) => x.mac),
      ['aa:bb:cc:00:00:01'],
    );
    assert.deepEqual(listDiscoveries(db, { subnet_id: other.id }).items, []);
    deleteMachine(db, m.system_id);
  });

  test('records for unknown subnets, addresses outside the subnet or bad values are refused, the rest stored', () => {
    const r = storeLeaseReports(
      db,
      rack.id,
      [
        lease({ subnet_id: 9999, ip: '10.1.0.101', mac: '52:54:00:00:00:09' }),
        lease({ subnet_id: subnet.id, ip: '10.9.0.1', mac: '52:54:00:00:00:09' }),
        lease({ subnet_id: subnet.id, ip: '10.1.0.300', mac: '52:54:00:00:00:09' }),
        lease({ subnet_id: subnet.id, ip: '10.1.0.102', mac: 'not-a-mac' }),
        lease({
          subnet_id: subnet.id,
          ip: '10.1.0.103',
          mac: '52:54:00:00:00:09',
          state: 'bogus' as 'active',
        }),
        lease({
          subnet_id: subnet.id,
          ip: '10.1.0.104',
          mac: '52:54:00:00:00:09',
          hostname: 'x'.repeat(500),
        }),
      ],
      T0,
    );
    assert.deepEqual([r.rejected, r.stored], [5, 1]);
    const l = listSubnetLeases(db, subnet.id, {}, T0).items.find((x) => x.ip === '10.1.0.104');
    assert.equal(l?.hostname?.length, 63);
  });

  test('leases list in numeric address order, page by cursor, show expiry, filter by state; 404 for no subnet', () => {
    const s = createSubnet(db, { cidr: '10.3.0.0/24' });
    const reports: LeaseReport[] = [];
    for (let i = 2; i < 30; i++) {
      reports.push(
        lease({
          subnet_id: s.id,
          ip: `10.3.0.${i}`,
          mac: `52:54:00:03:00:${i.toString(16).padStart(2, '0')}`,
          expires_at: i % 2 ? T0 - 1 : T0 + HOUR,
          state: i === 29 ? 'declined' : 'active',
        }),
      );
    }
    storeLeaseReports(db, rack.id, reports.reverse(), T0);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = listSubnetLeases(db, s.id, { limit: 5, cursor }, T0);
      seen.push(...page.items.map((x) => x.ip));
      cursor = page.next ?? undefined;
    } while (cursor);
    assert.deepEqual(
      seen,
      Array.from({ length: 28 }, (_, k) => `10.3.0.${k + 2}`),
    );
    const states = listSubnetLeases(db, s.id, { limit: 4 }, T0).items.map((x) => x.state);
    assert.deepEqual(states, ['active', 'expired', 'active', 'expired']);
    assert.equal(listSubnetLeases(db, s.id, { state: 'active' }, T0).items.length, 14);
    assert.equal(listSubnetLeases(db, s.id, { state: 'expired' }, T0).items.length, 13);
    assert.deepEqual(
      listSubnetLeases(db, s.id, { state: 'declined' }, T0).items.map((x) => x.ip),
      ['10.3.0.29'],
    );
    assert.throws(() => listSubnetLeases(db, 424242), code('KILN_ERR_NOT_FOUND'));
    assert.throws(() => listSubnetLeases(db, s.id, { cursor: 'garbage!' }), code('KILN_ERR_VALIDATION'));
    // Deleting the subnet takes its leases with it.
    deleteSubnet(db, s.id);
    assert.equal(
      (db.prepare('SELECT COUNT(*) AS n FROM dhcp_leases WHERE subnet_id = ?').get(s.id) as { n: number }).n,
      0,
    );
  });

  test('random reports never throw and never store an address outside its subnet', () => {
    const mac = fc.oneof(
      fc.constantFrom('52:54:00:00:00:01', 'aa:bb:cc:dd:ee:ff', 'AA-BB-CC-DD-EE-FF'),
      fc.string({ maxLength: 20 }),
    );
    const ip = fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }))
        .map(([a, b]) => `10.1.${a}.${b}`),
      fc.string({ maxLength: 20 }),
    );
    const report = fc.record({
      subnet_id: fc.constantFrom(subnet.id, other.id, 0, -1, 77777),
      ip,
      mac,
      state: fc.constantFrom('active', 'released', 'declined', 'weird') as fc.Arbitrary<LeaseReport['state']>,
      expires_at: fc.oneof(fc.integer(), fc.constant(Number.NaN), fc.double()),
      hostname: fc.option(fc.string({ maxLength: 300 })),
      updated_at: fc.oneof(fc.integer({ min: 0, max: 2 ** 45 }), fc.double()),
    });
    fc.assert(
      fc.property(fc.array(report, { maxLength: 20 }), (batch) => {
        const r = storeLeaseReports(db, rack.id, batch, T0);
        assert.equal(r.stored + r.stale + r.rejected, batch.length);
      }),
      { numRuns: 300 },
    );
    const bad = db
      .prepare(
        `SELECT l.ip, s.cidr FROM dhcp_leases l JOIN subnets s ON s.id = l.subnet_id
         WHERE NOT (l.ip LIKE '10.1.0.%' AND s.cidr = '10.1.0.0/24')`,
      )
      .all();
    assert.deepEqual(bad, []);
  });
});

describe('reservations and DHCP settings', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;
  const s = createSubnet(db, {
    cidr: '192.168.5.0/24',
    gateway: '192.168.5.1',
    dynamic_range: { start: '192.168.5.100', end: '192.168.5.199' },
  });

  test('pins are validated: host address, not the gateway, outside the dynamic range, a real MAC', () => {
    const bad: Array<[string, string]> = [
      ['52:54:00:00:00:01', '192.168.6.10'],
      ['52:54:00:00:00:01', '192.168.5.0'],
      ['52:54:00:00:00:01', '192.168.5.255'],
      ['52:54:00:00:00:01', '192.168.5.1'],
      ['52:54:00:00:00:01', '192.168.5.150'],
      ['52:54:00:00:00:01', 'nope'],
      ['zz', '192.168.5.10'],
    ];
    for (const [mac, ip] of bad) {
      assert.throws(
        () => createReservation(db, s.id, { mac, ip }),
        code('KILN_ERR_VALIDATION'),
        `${mac} ${ip}`,
      );
    }
    assert.throws(
      () =>
        createReservation(db, s.id, { mac: '52:54:00:00:00:01', ip: '192.168.5.10', hostname: 'Not Valid' }),
      code('KILN_ERR_VALIDATION'),
    );
    assert.throws(
      () => createReservation(db, 9999, { mac: '52:54:00:00:00:01', ip: '192.168.5.10' }),
      code('KILN_ERR_NOT_FOUND'),
    );
    assert.deepEqual(listReservations(db, s.id).items, []);
  });

  test('one pin per MAC and per address; a live lease of the address to another MAC is a conflict', () => {
    const r = createReservation(db, s.id, { mac: '52-54-00-00-00-01', ip: '192.168.5.10' });
    assert.equal(r.mac, '52:54:00:00:00:01');
    assert.throws(
      () => createReservation(db, s.id, { mac: '52:54:00:00:00:01', ip: '192.168.5.11' }),
      code('KILN_ERR_CONFLICT'),
    );
    assert.throws(
      () => createReservation(db, s.id, { mac: '52:54:00:00:00:02', ip: '192.168.5.10' }),
      code('KILN_ERR_CONFLICT'),
    );
    const now = Date.now();
    storeLeaseReports(db, null, [
      {
        subnet_id: s.id,
        ip: '192.168.5.20',
        mac: '52:54:00:00:00:09',
        state: 'active',
        expires_at: now + HOUR,
        hostname: null,
        updated_at: now,
      },
    ]);
    assert.throws(
      () => createReservation(db, s.id, { mac: '52:54:00:00:00:03', ip: '192.168.5.20' }),
      code('KILN_ERR_CONFLICT'),
    );
    // The lease holder itself may be pinned to the address it holds.
    createReservation(db, s.id, { mac: '52:54:00:00:00:09', ip: '192.168.5.20', hostname: 'holder' });
    assert.deepEqual(
      listReservations(db, s.id).items.map((x) => [x.ip, x.mac]),
      [
        ['192.168.5.10', '52:54:00:00:00:01'],
        ['192.168.5.20', '52:54:00:00:00:09'],
      ],
    );
    // A pinned address that is also leased shows once on the MAC, as the lease.
    const addrs = addressesOfMacs(db, ['52:54:00:00:00:09', '52:54:00:00:00:01']);
    assert.deepEqual(
      addrs.get('52:54:00:00:00:09')!.map((a) => a.source),
      ['dhcp'],
    );
    assert.deepEqual(addrs.get('52:54:00:00:00:01'), [
      { mac: '52:54:00:00:00:01', ip: '192.168.5.10', subnet_id: s.id, source: 'reserved', expires_at: null },
    ]);
  });

  test('DHCP gets pins with the machine hostname as fallback, only inside the current CIDR; delete and cascade', () => {
    const m = createMachine(db, { boot_mac: '52:54:00:00:00:01', hostname: 'pinned' });
    assert.deepEqual(reservationsForDhcp(db, s.id), [
      { mac: '52:54:00:00:00:01', ip: '192.168.5.10', hostname: 'pinned' },
      { mac: '52:54:00:00:00:09', ip: '192.168.5.20', hostname: 'holder' },
    ]);
    assert.equal(listReservations(db, s.id).items[0]!.machine, m.system_id);
    // The machine's interfaces are replaced: the pin (keyed by MAC) stays.
    updateMachine(db, m.system_id, { interfaces: [{ mac: '52:54:00:00:00:01', name: 'enp1s0' }] });
    assert.equal(reservationsForDhcp(db, s.id).length, 2);
    deleteReservation(db, s.id, '52:54:00:00:00:09');
    assert.throws(() => deleteReservation(db, s.id, '52:54:00:00:00:09'), code('KILN_ERR_NOT_FOUND'));
    assert.throws(() => deleteReservation(db, s.id, 'garbage'), code('KILN_ERR_NOT_FOUND'));
    updateSubnet(db, s.id, { cidr: '192.168.7.0/24', gateway: null, dynamic_range: null });
    assert.deepEqual(reservationsForDhcp(db, s.id), []);
    assert.equal(listReservations(db, s.id).items.length, 1);
    deleteSubnet(db, s.id);
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM dhcp_reservations').get() as { n: number }).n, 0);
  });

  test('settings: defaults, merge, validation', () => {
    const x = createSubnet(db, { cidr: '172.16.0.0/16' });
    assert.deepEqual(getSubnetDhcpSettings(db, x.id), { domain: null, lease_seconds: 3600 });
    assert.deepEqual(setSubnetDhcpSettings(db, x.id, { domain: 'Lab.Example.com' }), {
      domain: 'lab.example.com',
      lease_seconds: 3600,
    });
    assert.deepEqual(setSubnetDhcpSettings(db, x.id, { lease_seconds: 600 }), {
      domain: 'lab.example.com',
      lease_seconds: 600,
    });
    assert.throws(() => setSubnetDhcpSettings(db, x.id, { lease_seconds: 5 }), code('KILN_ERR_VALIDATION'));
    assert.throws(
      () => setSubnetDhcpSettings(db, x.id, { domain: 'bad domain' }),
      code('KILN_ERR_VALIDATION'),
    );
    assert.throws(() => setSubnetDhcpSettings(db, 9999, { lease_seconds: 600 }), code('KILN_ERR_NOT_FOUND'));
    assert.deepEqual(setSubnetDhcpSettings(db, x.id, { domain: null }), { domain: null, lease_seconds: 600 });
  });
});
