import type { Migration } from '../migrations.js';

/**
 * The region's side of DHCP (versions 30–39): leases the racks report, MACs DHCP saw that no
 * machine owns (discoveries), addresses pinned to a MAC (reservations), and per-subnet DHCP
 * settings the subnet table has no column for. Times people read are ISO text; `rack_updated_at`
 * is the rack's own change stamp (epoch ms), compared only with stamps from racks.
 */
export const migrations: Migration[] = [
  {
    version: 30,
    name: 'dhcp: leases per subnet, discoveries, reservations, subnet DHCP settings',
    up: `
      -- One row per (subnet, address): the newest report wins, by the rack's stamp, so a batch the
      -- rack sends again after a lost answer, or an older batch arriving late, changes nothing.
      -- ip_int orders addresses numerically (10.0.0.9 before 10.0.0.10).
      CREATE TABLE dhcp_leases (
        id INTEGER PRIMARY KEY,
        subnet_id INTEGER NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
        ip TEXT NOT NULL,
        ip_int INTEGER NOT NULL,
        mac TEXT NOT NULL,
        state TEXT NOT NULL,
        hostname TEXT,
        expires_at TEXT NOT NULL,
        rack_id INTEGER REFERENCES racks (id) ON DELETE SET NULL,
        rack_updated_at INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (subnet_id, ip)
      );
      CREATE INDEX dhcp_leases_subnet_ip ON dhcp_leases (subnet_id, ip_int, id);
      CREATE INDEX dhcp_leases_mac ON dhcp_leases (mac);

      -- A MAC DHCP served that no machine had at the time; one row per MAC, last address kept.
      CREATE TABLE dhcp_discoveries (
        id INTEGER PRIMARY KEY,
        mac TEXT NOT NULL UNIQUE,
        ip TEXT NOT NULL,
        subnet_id INTEGER REFERENCES subnets (id) ON DELETE SET NULL,
        rack_id INTEGER REFERENCES racks (id) ON DELETE SET NULL,
        hostname TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
      );
      CREATE INDEX dhcp_discoveries_last_seen ON dhcp_discoveries (last_seen, id);

      -- Keyed by MAC, not by interface row: the machine repository replaces interface rows when
      -- a machine's interfaces change, and a pin must outlive that (and may precede the machine).
      CREATE TABLE dhcp_reservations (
        id INTEGER PRIMARY KEY,
        subnet_id INTEGER NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
        mac TEXT NOT NULL,
        ip TEXT NOT NULL,
        ip_int INTEGER NOT NULL,
        hostname TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (subnet_id, mac),
        UNIQUE (subnet_id, ip)
      );
      CREATE INDEX dhcp_reservations_mac ON dhcp_reservations (mac);

      CREATE TABLE dhcp_subnet_settings (
        subnet_id INTEGER PRIMARY KEY REFERENCES subnets (id) ON DELETE CASCADE,
        domain TEXT,
        lease_seconds INTEGER NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
  },
];
