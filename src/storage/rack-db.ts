import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * The rack's own SQLite database, `<data_dir>/rack.db`: state that must survive a rack restart and
 * that the region does not own (DHCP leases). Separate from the region's database so a rack on
 * another host needs no region storage at all.
 */
export type RackDb = Database.Database;

interface Migration {
  version: number;
  sql: string;
}

/** Append only; a released version is never edited. */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE dhcp_lease (
        ip INTEGER PRIMARY KEY,          -- IPv4 as an unsigned 32-bit number
        mac TEXT NOT NULL,
        client_id TEXT,
        subnet_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,     -- ms since the epoch; end of quarantine when declined
        hostname TEXT,
        state TEXT NOT NULL CHECK (state IN ('active','released','declined')),
        updated_at INTEGER NOT NULL,
        reported INTEGER NOT NULL DEFAULT 0  -- 1 once the region has acknowledged this version
      );
      CREATE INDEX dhcp_lease_mac ON dhcp_lease(mac);
      CREATE INDEX dhcp_lease_unreported ON dhcp_lease(reported) WHERE reported = 0;
    `,
  },
];

export interface OpenRackDbOptions {
  /**
   * 'normal' (default): WAL with synchronous=NORMAL — a committed lease survives a crash of kiln;
   * a power loss may lose the last moments. 'full': every commit fsyncs.
   */
  durability?: 'normal' | 'full';
}

export function openRackDb(path: string, opts: OpenRackDbOptions = {}): RackDb {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.exec('CREATE TABLE IF NOT EXISTS rack_schema (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM rack_schema').get() as { v: number | null };
  const current = row.v ?? 0;
  const apply = db.transaction((m: Migration) => {
    db.exec(m.sql);
    db.prepare('INSERT INTO rack_schema (version) VALUES (?)').run(m.version);
  });
  for (const m of MIGRATIONS) if (m.version > current) apply(m);
  return db;
}
