import type { Migration } from '../migrations.js';

/**
 * The region inventory (versions 1–9). Timestamps are ISO-8601 UTC strings and JSON columns are TEXT,
 * so the same DDL reads the same in PostgreSQL; `INTEGER PRIMARY KEY` becomes an identity column there.
 */
export const migrations: Migration[] = [
  {
    version: 1,
    name: 'inventory: racks, machines, interfaces, tags, subnets, events, boot resources, api keys',
    up: `
      -- Minimal on purpose: the RPC migrations (10–19) add hostname, version, last_seen, ...
      CREATE TABLE racks (
        id INTEGER PRIMARY KEY,
        system_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE machines (
        id INTEGER PRIMARY KEY,
        system_id TEXT NOT NULL UNIQUE,
        hostname TEXT NOT NULL UNIQUE,
        architecture TEXT NOT NULL,
        status TEXT NOT NULL,
        power_type TEXT NOT NULL,
        power_parameters TEXT NOT NULL,
        zone TEXT NOT NULL,
        pool TEXT NOT NULL,
        description TEXT NOT NULL,
        hardware TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX machines_status ON machines (status, id);
      CREATE INDEX machines_zone ON machines (zone, id);
      CREATE INDEX machines_pool ON machines (pool, id);
      CREATE INDEX machines_created ON machines (created_at, id);
      CREATE INDEX machines_updated ON machines (updated_at, id);
      CREATE INDEX machines_arch ON machines (architecture, id);

      -- A MAC belongs to one machine at most: the boot path finds machines by MAC.
      CREATE TABLE interfaces (
        id INTEGER PRIMARY KEY,
        machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        mac TEXT NOT NULL UNIQUE,
        is_boot INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
      );
      CREATE INDEX interfaces_machine ON interfaces (machine_id);

      CREATE TABLE machine_tags (
        machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (machine_id, tag)
      );
      CREATE INDEX machine_tags_tag ON machine_tags (tag, machine_id);

      CREATE TABLE subnets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        cidr TEXT NOT NULL UNIQUE,
        gateway TEXT,
        dns_servers TEXT NOT NULL,
        dynamic_range_start TEXT,
        dynamic_range_end TEXT,
        managed INTEGER NOT NULL DEFAULT 0,
        proxy_mode INTEGER NOT NULL DEFAULT 0,
        rack_id INTEGER REFERENCES racks (id) ON DELETE SET NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX subnets_rack ON subnets (rack_id);

      -- Append-only: the repository has no update; rows go only with their machine.
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        level TEXT NOT NULL,
        text TEXT NOT NULL,
        data TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX events_machine ON events (machine_id, id);

      CREATE TABLE boot_resources (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        architecture TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (name, architecture, kind)
      );

      CREATE TABLE boot_resource_files (
        id INTEGER PRIMARY KEY,
        resource_id INTEGER NOT NULL REFERENCES boot_resources (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        filetype TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        path TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (resource_id, name)
      );
      CREATE INDEX boot_resource_files_sha256 ON boot_resource_files (sha256);

      -- Only the sha256 of a key is stored; the key itself is shown once, at creation.
      CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
      );
    `,
  },
];
