import type { Migration } from '../migrations.js';

/**
 * Engineer C's range (10–19): what the RPC layer records about racks, the region's worker
 * processes and which worker holds a connection to which rack. Times the region compares (heartbeats)
 * are epoch milliseconds; times people read are ISO text.
 */
export const migrations: Migration[] = [
  {
    version: 10,
    name: 'rpc: rack details, region workers, rack connections',
    up: `
      ALTER TABLE racks ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
      ALTER TABLE racks ADD COLUMN version TEXT NOT NULL DEFAULT '';
      ALTER TABLE racks ADD COLUMN interfaces TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE racks ADD COLUMN last_seen TEXT;

      -- One row per live region worker process; rows past their heartbeat expiry are deleted.
      CREATE TABLE region_workers (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        rpc_addresses TEXT NOT NULL,
        http_port INTEGER,
        started_at TEXT NOT NULL,
        heartbeat_ms INTEGER NOT NULL
      );

      CREATE TABLE rack_connections (
        id TEXT PRIMARY KEY,
        worker_id TEXT NOT NULL REFERENCES region_workers (id) ON DELETE CASCADE,
        rack_id INTEGER NOT NULL REFERENCES racks (id) ON DELETE CASCADE,
        remote_address TEXT NOT NULL,
        connected_at TEXT NOT NULL
      );
      CREATE INDEX rack_connections_rack ON rack_connections (rack_id);
      CREATE INDEX rack_connections_worker ON rack_connections (worker_id);
    `,
  },
];
