import type Database from 'better-sqlite3';
import { type Cidr, cidrContains, ipToInt, isIpv4, parseCidr } from '../lib/ipv4.js';
import { isMac, parseMac } from '../lib/mac.js';
import { appendEvent } from './events.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';
import { requireSubnet } from './subnets.js';

/**
 * What DHCP saw, as the racks report it: leases per subnet (one row per address, newest report
 * wins) and discoveries (MACs no machine owns). Both tables are bounded by nature — a subnet has so
 * many addresses, a network so many MACs — so nothing here needs pruning.
 */

/** One lease change as a rack reports it (UpdateLeases' LeaseRecord, times in epoch ms). */
export interface LeaseReport {
  subnet_id: number;
  ip: string;
  mac: string;
  state: 'active' | 'released' | 'declined';
  expires_at: number;
  hostname: string | null;
  /** The rack's change stamp: a report not newer than the stored one is ignored. */
  updated_at: number;
}

export interface StoreLeasesResult {
  /** Reports written (new or newer than what was stored). */
  stored: number;
  /** Reports already known (a resent batch) or older than the stored row. */
  stale: number;
  /** Reports refused: unknown subnet, address outside it, malformed MAC or address. */
  rejected: number;
  /** Reports whose MAC no machine owns, recorded as discoveries. */
  discoveries: number;
  /** `dhcp.lease` events appended to machines' timelines. */
  events: number;
}

interface StoredRow {
  mac: string;
  state: string;
  rack_updated_at: number;
}

const LEASE_STATES: readonly string[] = ['active', 'released', 'declined'];

const iso = (ms: number) => new Date(ms).toISOString();

/** Bounded text from a rack: hostnames come from DHCP clients (option 12), so never trust their size. */
function cleanHostname(h: string | null): string | null {
  if (h === null) return null;
  const t = h.slice(0, 63);
  return t.length > 0 ? t : null;
}

/**
 * Stores a batch of lease reports from one rack in one transaction: either the whole batch is
 * applied or none of it. For a MAC some machine owns, a lease that is new (no row for the address,
 * another MAC held it, or it was not active) appends one `dhcp.lease` event to that machine's
 * timeline; renewals and resent batches append nothing. A MAC no machine owns becomes a discovery.
 * Bad records are counted and skipped, never stored: one bad record does not lose the others.
 */
export function storeLeaseReports(
  db: Database.Database,
  rackId: number | null,
  reports: readonly LeaseReport[],
  nowMs: number = Date.now(),
): StoreLeasesResult {
  const result: StoreLeasesResult = { stored: 0, stale: 0, rejected: 0, discoveries: 0, events: 0 };
  const now = iso(nowMs);
  const subnetStmt = db.prepare('SELECT cidr FROM subnets WHERE id = ?');
  const current = db.prepare(
    'SELECT mac, state, rack_updated_at FROM dhcp_leases WHERE subnet_id = ? AND ip = ?',
  );
  const upsert = db.prepare(
    `INSERT INTO dhcp_leases (subnet_id, ip, ip_int, mac, state, hostname, expires_at, rack_id, rack_updated_at,
       created_at, updated_at)
     VALUES (@subnet_id, @ip, @ip_int, @mac, @state, @hostname, @expires_at, @rack_id, @rack_updated_at, @now, @now)
     ON CONFLICT (subnet_id, ip) DO UPDATE SET mac = excluded.mac, state = excluded.state,
       hostname = excluded.hostname, expires_at = excluded.expires_at, rack_id = excluded.rack_id,
       rack_updated_at = excluded.rack_updated_at, updated_at = excluded.updated_at`,
  );
  const owner = db.prepare('SELECT machine_id FROM interfaces WHERE mac = ?');
  const discover = db.prepare(
    `INSERT INTO dhcp_discoveries (mac, ip, subnet_id, rack_id, hostname, first_seen, last_seen)
     VALUES (@mac, @ip, @subnet_id, @rack_id, @hostname, @seen, @seen)
     ON CONFLICT (mac) DO UPDATE SET
       ip = CASE WHEN excluded.last_seen >= dhcp_discoveries.last_seen THEN excluded.ip ELSE dhcp_discoveries.ip END,
       subnet_id = CASE WHEN excluded.last_seen >= dhcp_discoveries.last_seen THEN excluded.subnet_id
         ELSE dhcp_discoveries.subnet_id END,
       rack_id = CASE WHEN excluded.last_seen >= dhcp_discoveries.last_seen THEN excluded.rack_id
         ELSE dhcp_discoveries.rack_id END,
       hostname = COALESCE(excluded.hostname, dhcp_discoveries.hostname),
       first_seen = CASE WHEN excluded.first_seen < dhcp_discoveries.first_seen THEN excluded.first_seen
         ELSE dhcp_discoveries.first_seen END,
       last_seen = CASE WHEN excluded.last_seen > dhcp_discoveries.last_seen THEN excluded.last_seen
         ELSE dhcp_discoveries.last_seen END`,
  );

  const cidrs = new Map<number, { text: string; cidr: Cidr } | null>();
  const subnetOf = (id: number) => {
    if (!cidrs.has(id)) {
      const row = subnetStmt.get(id) as { cidr: string } | undefined;
      cidrs.set(id, row ? { text: row.cidr, cidr: parseCidr(row.cidr) } : null);
    }
    return cidrs.get(id) ?? null;
  };

  const run = db.transaction(() => {
    for (const r of reports) {
      const subnet = subnetOf(r.subnet_id);
      if (
        !subnet ||
        !isIpv4(r.ip) ||
        !cidrContains(subnet.cidr, ipToInt(r.ip)) ||
        !isMac(r.mac) ||
        !LEASE_STATES.includes(r.state) ||
        !Number.isSafeInteger(r.updated_at) ||
        !Number.isSafeInteger(r.expires_at)
      ) {
        result.rejected++;
        continue;
      }
      const mac = parseMac(r.mac);
      const prev = current.get(r.subnet_id, r.ip) as StoredRow | undefined;
      if (prev && prev.rack_updated_at >= r.updated_at) {
        result.stale++;
        continue;
      }
      const hostname = cleanHostname(r.hostname);
      upsert.run({
        subnet_id: r.subnet_id,
        ip: r.ip,
        ip_int: ipToInt(r.ip),
        mac,
        state: r.state,
        hostname,
        expires_at: iso(r.expires_at),
        rack_id: rackId,
        rack_updated_at: r.updated_at,
        now,
      });
      result.stored++;
      const machine = owner.get(mac) as { machine_id: number } | undefined;
      if (machine) {
        const isNew = r.state === 'active' && (!prev || prev.mac !== mac || prev.state !== 'active');
        if (isNew) {
          appendEvent(db, machine.machine_id, {
            type: 'dhcp.lease',
            level: 'info',
            text: `DHCP lease ${r.ip} in ${subnet.text} for ${mac}`,
            data: { ip: r.ip, mac, subnet_id: r.subnet_id, expires_at: iso(r.expires_at), hostname },
          });
          result.events++;
        }
      } else {
        discover.run({
          mac,
          ip: r.ip,
          subnet_id: r.subnet_id,
          rack_id: rackId,
          hostname,
          seen: iso(Math.min(r.updated_at, nowMs)),
        });
        result.discoveries++;
      }
    }
  });
  run.immediate();
  return result;
}

// --- leases of a subnet --------------------------------------------------------------------------

export type LeaseState = 'active' | 'expired' | 'released' | 'declined';

export interface SubnetLease {
  ip: string;
  mac: string;
  /** `expired`: reported active, but its time has passed and no renewal arrived. */
  state: LeaseState;
  hostname: string | null;
  expires_at: string;
  /** system_id of the rack that reported it. */
  rack: string | null;
  /** system_id of the machine owning the MAC, if any. */
  machine: string | null;
  updated_at: string;
}

export interface LeaseListOptions {
  limit?: number | undefined;
  cursor?: string | undefined;
  /** Only leases in this state (as shown, so `active` excludes expired ones). */
  state?: LeaseState | undefined;
}

interface LeaseRow {
  id: number;
  ip: string;
  ip_int: number;
  mac: string;
  state: 'active' | 'released' | 'declined';
  hostname: string | null;
  expires_at: string;
  rack: string | null;
  machine: string | null;
  updated_at: string;
}

/** One page of a subnet's leases in address order. NotFoundError for an unknown subnet. */
export function listSubnetLeases(
  db: Database.Database,
  subnetId: number,
  opts: LeaseListOptions = {},
  nowMs: number = Date.now(),
): Page<SubnetLease> {
  requireSubnet(db, subnetId);
  const limit = pageLimit(opts.limit);
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, 'ip') : undefined;
  const ks = keyset('l.ip_int', 'l.id', false, cursor);
  const now = iso(nowMs);
  const where = ['l.subnet_id = ?'];
  const params: unknown[] = [subnetId];
  if (opts.state === 'active') {
    where.push("l.state = 'active' AND l.expires_at > ?");
    params.push(now);
  } else if (opts.state === 'expired') {
    where.push("l.state = 'active' AND l.expires_at <= ?");
    params.push(now);
  } else if (opts.state !== undefined) {
    where.push('l.state = ?');
    params.push(opts.state);
  }
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(
      `SELECT l.id, l.ip, l.ip_int, l.mac, l.state, l.hostname, l.expires_at, l.updated_at,
         r.system_id AS rack,
         (SELECT m.system_id FROM interfaces i JOIN machines m ON m.id = i.machine_id WHERE i.mac = l.mac) AS machine
       FROM dhcp_leases l LEFT JOIN racks r ON r.id = l.rack_id
       WHERE ${where.join(' AND ')} ORDER BY ${ks.orderBy} LIMIT ?`,
    )
    .all(...params, limit + 1) as LeaseRow[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return {
    items: rows.map((r) => ({
      ip: r.ip,
      mac: r.mac,
      state: r.state === 'active' && r.expires_at <= now ? 'expired' : r.state,
      hostname: r.hostname,
      expires_at: r.expires_at,
      rack: r.rack,
      machine: r.machine,
      updated_at: r.updated_at,
    })),
    next: more && last ? encodeCursor({ sort: 'ip', value: last.ip_int, id: last.id }) : null,
  };
}

// --- a machine's addresses -----------------------------------------------------------------------

export interface MacAddress {
  mac: string;
  ip: string;
  subnet_id: number;
  /** `dhcp`: a current lease; `reserved`: pinned to the MAC (served whenever the MAC asks). */
  source: 'dhcp' | 'reserved';
  /** When the lease ends; null for a reservation. */
  expires_at: string | null;
}

/**
 * The current addresses of these MACs: unexpired active leases and reservations, keyed by MAC.
 * A reserved address that is also leased is listed once, as `dhcp` (it is in use).
 */
export function addressesOfMacs(
  db: Database.Database,
  macs: readonly string[],
  nowMs: number = Date.now(),
): Map<string, MacAddress[]> {
  const out = new Map<string, MacAddress[]>();
  const now = iso(nowMs);
  const unique = [...new Set(macs)];
  // Chunks keep the bound-parameter count far under SQLite's and PostgreSQL's limits.
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const marks = chunk.map(() => '?').join(',');
    const leases = db
      .prepare(
        `SELECT mac, ip, subnet_id, expires_at FROM dhcp_leases
         WHERE mac IN (${marks}) AND state = 'active' AND expires_at > ? ORDER BY mac, ip_int`,
      )
      .all(...chunk, now) as Array<{ mac: string; ip: string; subnet_id: number; expires_at: string }>;
    const reserved = db
      .prepare(
        `SELECT mac, ip, subnet_id FROM dhcp_reservations WHERE mac IN (${marks}) ORDER BY mac, ip_int`,
      )
      .all(...chunk) as Array<{ mac: string; ip: string; subnet_id: number }>;
    for (const l of leases) {
      const list = out.get(l.mac) ?? [];
      list.push({ mac: l.mac, ip: l.ip, subnet_id: l.subnet_id, source: 'dhcp', expires_at: l.expires_at });
      out.set(l.mac, list);
    }
    for (const r of reserved) {
      const list = out.get(r.mac) ?? [];
      if (list.some((a) => a.ip === r.ip && a.subnet_id === r.subnet_id)) continue;
      list.push({ mac: r.mac, ip: r.ip, subnet_id: r.subnet_id, source: 'reserved', expires_at: null });
      out.set(r.mac, list);
    }
  }
  return out;
}

// --- discoveries ---------------------------------------------------------------------------------

export interface Discovery {
  mac: string;
  ip: string;
  subnet_id: number | null;
  rack: string | null;
  hostname: string | null;
  first_seen: string;
  last_seen: string;
}

export interface DiscoveryListOptions {
  limit?: number | undefined;
  cursor?: string | undefined;
  subnet_id?: number | undefined;
}

/**
 * MACs DHCP served that no machine owns, in order of first discovery. A MAC that has since become
 * a machine's (it enlisted) drops out of the list without any bookkeeping.
 */
export function listDiscoveries(db: Database.Database, opts: DiscoveryListOptions = {}): Page<Discovery> {
  const limit = pageLimit(opts.limit);
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, 'id') : undefined;
  const ks = keyset(undefined, 'd.id', false, cursor);
  const where = ['NOT EXISTS (SELECT 1 FROM interfaces i WHERE i.mac = d.mac)'];
  const params: unknown[] = [];
  if (opts.subnet_id !== undefined) {
    where.push('d.subnet_id = ?');
    params.push(opts.subnet_id);
  }
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(
      `SELECT d.id, d.mac, d.ip, d.subnet_id, r.system_id AS rack, d.hostname, d.first_seen, d.last_seen
       FROM dhcp_discoveries d LEFT JOIN racks r ON r.id = d.rack_id
       WHERE ${where.join(' AND ')} ORDER BY ${ks.orderBy} LIMIT ?`,
    )
    .all(...params, limit + 1) as Array<Discovery & { id: number }>;
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return {
    items: rows.map(({ id: _id, ...d }) => d),
    next: more && last ? encodeCursor({ sort: 'id', id: last.id }) : null,
  };
}
