import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import { findBootResource, listBootResources, putBootResource } from '../../src/storage/boot-resources.js';
import {
  createSubnet,
  deleteSubnet,
  managedSubnetsForRack,
  updateSubnet,
} from '../../src/storage/subnets.js';
import { tempRegionDb } from './helpers.js';

describe('subnets repository', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;
  const rackId = Number(
    db
      .prepare("INSERT INTO racks (system_id, name, created_at, updated_at) VALUES ('rk0001', 'r', 'x', 'x')")
      .run().lastInsertRowid,
  );

  test('create, update, managed-for-rack, delete', () => {
    const s = createSubnet(db, {
      cidr: '10.20.0.0/24',
      gateway: '10.20.0.1',
      dns_servers: ['10.20.0.2'],
      dynamic_range: { start: '10.20.0.100', end: '10.20.0.200' },
    });
    assert.equal(s.name, '10.20.0.0/24');
    assert.equal(s.managed, false);
    assert.deepEqual(managedSubnetsForRack(db, rackId), []);
    const u = updateSubnet(db, s.id, { managed: true, rack_id: rackId });
    assert.equal(u.managed, true);
    assert.deepEqual(
      managedSubnetsForRack(db, rackId).map((x) => x.id),
      [s.id],
    );
    deleteSubnet(db, s.id);
    assert.throws(
      () => deleteSubnet(db, s.id),
      (e: unknown) => isKilnError(e, 'KILN_ERR_NOT_FOUND'),
    );
  });

  test('bad CIDRs, gateways and ranges name the field; duplicates conflict', () => {
    const cases: Array<[Parameters<typeof createSubnet>[1], string]> = [
      [{ cidr: '10.0.0.0/33' }, 'cidr'],
      [{ cidr: '10.0.0.1/24' }, 'cidr'],
      [{ cidr: 'banana' }, 'cidr'],
      [{ cidr: '10.1.0.0/24', gateway: '10.2.0.1' }, 'gateway'],
      [{ cidr: '10.1.0.0/24', dynamic_range: { start: '10.1.0.10', end: '10.1.1.10' } }, 'dynamic_range.end'],
      [
        { cidr: '10.1.0.0/24', dynamic_range: { start: '10.1.0.0', end: '10.1.0.10' } },
        'dynamic_range.start',
      ],
      [{ cidr: '10.1.0.0/24', dynamic_range: { start: '10.1.0.50', end: '10.1.0.10' } }, 'dynamic_range'],
      [{ cidr: '10.1.0.0/24', rack_id: 4242 }, 'rack_id'],
    ];
    for (const [input, field] of cases) {
      assert.throws(
        () => createSubnet(db, input),
        (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION') && e.message.startsWith(`${field}:`),
        JSON.stringify(input),
      );
    }
    createSubnet(db, { cidr: '192.168.7.0/24' });
    assert.throws(
      () => createSubnet(db, { cidr: '192.168.7.0/24' }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_CONFLICT'),
    );
  });
});

describe('boot resources repository', () => {
  const t = tempRegionDb();
  after(t.cleanup);
  const { db } = t;
  const sha = (c: string) => c.repeat(64);

  test('put creates, put again swaps the file set atomically', () => {
    const r1 = putBootResource(db, {
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [
        { name: 'vmlinuz', filetype: 'kernel', sha256: sha('a'), size: 10, path: 'images/sha256/a' },
        { name: 'initrd.img', filetype: 'initrd', sha256: sha('b'), size: 20, path: 'images/sha256/b' },
      ],
    });
    assert.equal(r1.files.length, 2);
    const r2 = putBootResource(db, {
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [{ name: 'vmlinuz', filetype: 'kernel', sha256: sha('c'), size: 11, path: 'images/sha256/c' }],
    });
    assert.equal(r2.id, r1.id);
    assert.deepEqual(
      findBootResource(db, 'kiln/ephemeral', 'amd64/generic', 'ephemeral')?.files.map((f) => f.sha256),
      [sha('c')],
    );
    assert.equal(listBootResources(db).items.length, 1);
    assert.throws(
      () =>
        putBootResource(db, {
          name: 'x',
          architecture: 'amd64/generic',
          kind: 'os',
          files: [{ name: 'k', filetype: 'kernel', sha256: 'XYZ', size: 1, path: 'p' }],
        }),
      (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION') && e.message.startsWith('files.0.sha256'),
    );
  });
});
