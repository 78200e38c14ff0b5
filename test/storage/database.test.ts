import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isKilnError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { openDatabase } from '../../src/storage/database.js';
import { migrations as boot } from '../../src/storage/migrations/boot.js';
import { migrations as dhcp } from '../../src/storage/migrations/dhcp.js';
import { regionMigrations } from '../../src/storage/migrations/index.js';
import { migrations as inventory } from '../../src/storage/migrations/inventory.js';
import { migrations as regionRpc } from '../../src/storage/migrations/region-rpc.js';
import { type Migration, runMigrations } from '../../src/storage/migrations.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-db-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);

describe('openRegionDatabase', () => {
  test('creates data_dir 0700 and region.db 0600, in WAL mode with foreign keys on', () => {
    const dir = fresh();
    const db = openRegionDatabase(dir, silentLogger);
    try {
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'region.db')).mode & 0o777, 0o600);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('synchronous', { simple: true }), 1); // NORMAL
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
      assert.deepEqual(
        versions.map((r) => (r as { version: number }).version),
        regionMigrations.map((m) => m.version),
      );
    } finally {
      db.close();
    }
  });

  test('opening twice applies nothing the second time and keeps the data', () => {
    const dir = fresh();
    const db1 = openRegionDatabase(dir, silentLogger);
    db1
      .prepare("INSERT INTO racks (system_id, name, created_at, updated_at) VALUES ('r1', 'rack', 'x', 'x')")
      .run();
    const result = runMigrations(db1, regionMigrations, silentLogger);
    assert.deepEqual(result.applied, []);
    db1.close();
    const db2 = openRegionDatabase(dir, silentLogger);
    try {
      assert.equal((db2.prepare('SELECT count(*) AS n FROM racks').get() as { n: number }).n, 1);
      const count = db2.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number };
      assert.equal(count.n, regionMigrations.length);
    } finally {
      db2.close();
    }
  });

  test('a file that is not a database stops with a clear KILN_ERR_DB_CORRUPT', () => {
    const dir = fresh();
    openRegionDatabase(dir, silentLogger).close();
    writeFileSync(join(dir, 'region.db'), Buffer.alloc(8192, 0x41));
    rmSync(join(dir, 'region.db-wal'), { force: true });
    rmSync(join(dir, 'region.db-shm'), { force: true });
    assert.throws(
      () => openRegionDatabase(dir, silentLogger),
      (err: unknown) =>
        isKilnError(err, 'KILN_ERR_DB_CORRUPT') &&
        /not a valid SQLite database or is corrupt/.test(err.message) &&
        err.message.includes(join(dir, 'region.db')),
    );
  });

  test('a database locked by another process stops with KILN_ERR_DB_LOCKED', async () => {
    const dir = fresh();
    const path = join(dir, 'region.db');
    // A rollback-journal database held under an exclusive lock by another process.
    mkdirSync(dir, { recursive: true });
    const pre = new Database(path);
    pre.exec('CREATE TABLE t (x INTEGER)');
    pre.close();
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D=require('better-sqlite3');const d=new D(${JSON.stringify(path)});d.exec('BEGIN EXCLUSIVE');d.exec('INSERT INTO t VALUES (1)');process.stdout.write('locked\\n');process.stdin.resume();process.stdin.on('end',()=>process.exit(0));`,
      ],
      { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        holder.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
      });
      assert.throws(
        () => openRegionDatabase(dir, silentLogger, { busyTimeoutMs: 100 }),
        (err: unknown) =>
          isKilnError(err, 'KILN_ERR_DB_LOCKED') && /locked by another process/.test(err.message),
      );
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('a data_dir that cannot be created is a clear error', () => {
    const file = join(root, `file${n++}`);
    writeFileSync(file, 'x');
    assert.throws(
      () => openRegionDatabase(join(file, 'sub'), silentLogger),
      (err: unknown) => isKilnError(err, 'KILN_ERR_DB_OPEN') && /cannot create data_dir/.test(err.message),
    );
  });
});

describe('runMigrations', () => {
  const mk = (): Database.Database => openDatabase(':memory:', silentLogger);

  test('applies in order, each once', () => {
    const db = mk();
    const ms: Migration[] = [
      { version: 1, name: 'a', up: 'CREATE TABLE a (x INTEGER)' },
      { version: 2, name: 'b', up: (d) => d.exec('CREATE TABLE b (x INTEGER)') },
    ];
    assert.deepEqual(runMigrations(db, ms, silentLogger), { applied: [1, 2], version: 2 });
    assert.deepEqual(runMigrations(db, ms, silentLogger), { applied: [], version: 2 });
    const more = [...ms, { version: 3, name: 'c', up: 'CREATE TABLE c (x INTEGER)' }];
    assert.deepEqual(runMigrations(db, more, silentLogger).applied, [3]);
    db.close();
  });

  test('a failing migration leaves nothing of itself behind', () => {
    const db = mk();
    const ms: Migration[] = [
      { version: 1, name: 'ok', up: 'CREATE TABLE a (x INTEGER)' },
      { version: 2, name: 'bad', up: 'CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);' },
    ];
    assert.throws(
      () => runMigrations(db, ms, silentLogger),
      (err: unknown) =>
        isKilnError(err, 'KILN_ERR_MIGRATION') && /migration 2 \(bad\) failed/.test(err.message),
    );
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    assert.deepEqual(
      tables.map((t) => (t as { name: string }).name),
      ['a', 'schema_migrations'],
    );
    db.close();
  });

  test('refuses a database written by a newer kiln', () => {
    const db = mk();
    runMigrations(db, [{ version: 1, name: 'a', up: 'CREATE TABLE a (x INTEGER)' }], silentLogger);
    db.prepare("INSERT INTO schema_migrations VALUES (7, 'future', 'x')").run();
    assert.throws(
      () => runMigrations(db, [{ version: 1, name: 'a', up: 'CREATE TABLE a (x INTEGER)' }], silentLogger),
      (err: unknown) => isKilnError(err, 'KILN_ERR_SCHEMA_NEWER') && /newer kiln/.test(err.message),
    );
    db.close();
  });

  test('refuses out-of-order version lists', () => {
    const db = mk();
    assert.throws(
      () =>
        runMigrations(
          db,
          [
            { version: 2, name: 'a', up: '' },
            { version: 1, name: 'b', up: '' },
          ],
          silentLogger,
        ),
      (err: unknown) => isKilnError(err, 'KILN_ERR_MIGRATION'),
    );
    db.close();
  });

  test('each owner keeps to its version range, and the whole list increases', () => {
    const ranges: Array<[Migration[], number, number]> = [
      [inventory, 1, 9],
      [regionRpc, 10, 19],
      [boot, 20, 29],
      [dhcp, 30, 39],
    ];
    for (const [list, lo, hi] of ranges) {
      for (const m of list)
        assert.ok(m.version >= lo && m.version <= hi, `${m.name}: ${m.version} not in ${lo}–${hi}`);
    }
    let last = 0;
    for (const m of regionMigrations) {
      assert.ok(m.version > last, `version ${m.version} after ${last}`);
      last = m.version;
    }
  });
});
