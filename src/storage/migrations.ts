import type Database from 'better-sqlite3';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/**
 * One schema step. `version` is unique and increasing across every owner's list (see
 * migrations/index.ts for the ranges); once released, a migration is never edited — a change is a
 * new version. `up` is SQL (may hold several statements) or a function for steps SQL cannot say.
 * Keep the SQL portable (TEXT/INTEGER, no SQLite-only syntax where avoidable): PostgreSQL joins later.
 */
export interface Migration {
  version: number;
  name: string;
  up: string | ((db: Database.Database) => void);
}

export interface MigrationResult {
  /** Versions applied by this run, in order. Empty when the schema was already current. */
  applied: number[];
  /** The schema version after the run. */
  version: number;
}

function checkOrder(migrations: readonly Migration[]): void {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= last) {
      throw new KilnError(
        'KILN_ERR_MIGRATION',
        `migration ${m.version} (${m.name}) is out of order: versions must increase (previous ${last})`,
      );
    }
    last = m.version;
  }
}

/**
 * Brings the database up to the newest migration. Each migration runs in its own transaction
 * together with its `schema_migrations` row, so a failure leaves the database at the previous
 * version, never half-migrated. Running it again is a no-op. A database that has versions this
 * code does not know was written by a newer kiln: refuse rather than guess.
 */
export function runMigrations(
  db: Database.Database,
  migrations: readonly Migration[],
  logger: Logger,
): MigrationResult {
  checkOrder(migrations);
  db.exec(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
       version INTEGER PRIMARY KEY,
       name TEXT NOT NULL,
       applied_at TEXT NOT NULL
     )`,
  );
  const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{
    version: number;
  }>;
  const done = new Set(rows.map((r) => r.version));
  const known = new Set(migrations.map((m) => m.version));
  const unknown = rows.map((r) => r.version).filter((v) => !known.has(v));
  if (unknown.length > 0) {
    const newest = Math.max(...unknown);
    throw new KilnError(
      'KILN_ERR_SCHEMA_NEWER',
      `the database has schema version ${newest}, which this kiln does not know: it was written by a newer kiln. Upgrade kiln, or restore a backup made by this version.`,
      { unknown_versions: unknown },
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const isDone = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    // Several region workers may start at once: take the write lock first (IMMEDIATE) and look
    // again, so exactly one of them applies each step and the others see it done.
    const step = db.transaction((): boolean => {
      if (isDone.get(m.version)) return false;
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      record.run(m.version, m.name, new Date().toISOString());
      return true;
    });
    try {
      if (!step.immediate()) continue;
    } catch (err) {
      throw new KilnError(
        'KILN_ERR_MIGRATION',
        `migration ${m.version} (${m.name}) failed: ${(err as Error).message}`,
        { version: m.version },
        { cause: err },
      );
    }
    logger.info({ version: m.version, name: m.name }, 'database migration applied');
    applied.push(m.version);
  }
  const version = migrations.length ? migrations[migrations.length - 1]!.version : 0;
  return { applied, version: Math.max(version, ...rows.map((r) => r.version), 0) };
}
