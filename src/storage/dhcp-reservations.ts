import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError, ValidationError } from '../lib/errors.js';
import { broadcastOf, cidrContains, ipToInt, isIpv4, parseCidr } from '../lib/ipv4.js';
import { parseMac } from '../lib/mac.js';
import { constraintKind } from './database.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';
import { requireSubnet } from './subnets.js';

/**
 * Addresses pinned to a MAC in a subnet ("the region can pin a MAC to an address"). DHCP gives that
 * MAC this address and nobody else. The address must be a host address of the subnet, not its
 * gateway, and outside its dynamic range (so the pool and the pins never compete); each address and
 * each MAC is pinned at most once per subnet.
 */
export interface Reservation {
  subnet_id: number;
  mac: string;
  ip: string;
  /** Given to the client (option 12); null: the owning machine's hostname, if any. */
  hostname: string | null;
  /** system_id of the machine owning the MAC, if any. */
  machine: string | null;
  created_at: string;
  updated_at: string;
}

export interface ReservationInput {
  mac: string;
  ip: string;
  hostname?: string | null | undefined;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`${field}: ${message}`, { issues: [{ field, message }] });
}

const SELECT = `SELECT r.id, r.subnet_id, r.mac, r.ip, r.ip_int, r.hostname, r.created_at, r.updated_at,
    (SELECT m.system_id FROM interfaces i JOIN machines m ON m.id = i.machine_id WHERE i.mac = r.mac) AS machine
  FROM dhcp_reservations r`;

type Row = Reservation & { id: number; ip_int: number };

const view = ({ id: _id, ip_int: _n, ...r }: Row): Reservation => r;

/** Pins `mac` to `ip` in the subnet. ValidationError for a bad address, ConflictError for a taken one. */
export function createReservation(
  db: Database.Database,
  subnetId: number,
  input: ReservationInput,
  nowMs: number = Date.now(),
): Reservation {
  let mac: string;
  try {
    mac = parseMac(input.mac);
  } catch {
    throw invalid('mac', 'not a MAC address');
  }
  if (!isIpv4(input.ip)) throw invalid('ip', 'not an IPv4 address');
  const hostname = input.hostname ?? null;
  if (hostname !== null && !HOSTNAME.test(hostname)) {
    throw invalid('hostname', 'must be a host name label: a-z, 0-9 and -, 1–63 characters');
  }
  const ipInt = ipToInt(input.ip);
  const now = new Date(nowMs).toISOString();
  const run = db.transaction(() => {
    const subnet = requireSubnet(db, subnetId);
    const cidr = parseCidr(subnet.cidr);
    if (!cidrContains(cidr, ipInt) || ipInt === cidr.network || ipInt === broadcastOf(cidr)) {
      throw invalid('ip', `${input.ip} is not a host address in ${subnet.cidr}`);
    }
    if (subnet.gateway === input.ip) throw invalid('ip', `${input.ip} is the subnet's gateway`);
    const range = subnet.dynamic_range;
    if (range && ipInt >= ipToInt(range.start) && ipInt <= ipToInt(range.end)) {
      throw invalid(
        'ip',
        `${input.ip} is inside the dynamic range ${range.start}–${range.end}; pin an address outside it`,
      );
    }
    const sameMac = db
      .prepare('SELECT ip FROM dhcp_reservations WHERE subnet_id = ? AND mac = ?')
      .get(subnetId, mac) as { ip: string } | undefined;
    if (sameMac) {
      throw new ConflictError(`${mac} is already pinned to ${sameMac.ip} in ${subnet.cidr}`, {
        field: 'mac',
        mac,
        ip: sameMac.ip,
      });
    }
    const sameIp = db
      .prepare('SELECT mac FROM dhcp_reservations WHERE subnet_id = ? AND ip = ?')
      .get(subnetId, input.ip) as { mac: string } | undefined;
    if (sameIp) {
      throw new ConflictError(`${input.ip} is already pinned to ${sameIp.mac}`, {
        field: 'ip',
        ip: input.ip,
        mac: sameIp.mac,
      });
    }
    // A live lease of this address to another MAC: pinning it now would give one address to two hosts.
    const leased = db
      .prepare(
        `SELECT mac, expires_at FROM dhcp_leases
         WHERE subnet_id = ? AND ip = ? AND state = 'active' AND expires_at > ? AND mac <> ?`,
      )
      .get(subnetId, input.ip, now, mac) as { mac: string; expires_at: string } | undefined;
    if (leased) {
      throw new ConflictError(`${input.ip} is leased to ${leased.mac} until ${leased.expires_at}`, {
        field: 'ip',
        ip: input.ip,
        mac: leased.mac,
      });
    }
    db.prepare(
      `INSERT INTO dhcp_reservations (subnet_id, mac, ip, ip_int, hostname, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(subnetId, mac, input.ip, ipInt, hostname, now, now);
  });
  try {
    run.immediate();
  } catch (err) {
    if (constraintKind(err) === 'unique') {
      throw new ConflictError(`${mac} or ${input.ip} is already pinned in this subnet`, {
        mac,
        ip: input.ip,
      });
    }
    throw err;
  }
  return getReservation(db, subnetId, mac)!;
}

export function getReservation(
  db: Database.Database,
  subnetId: number,
  mac: string,
): Reservation | undefined {
  let m: string;
  try {
    m = parseMac(mac);
  } catch {
    return undefined;
  }
  const row = db.prepare(`${SELECT} WHERE r.subnet_id = ? AND r.mac = ?`).get(subnetId, m) as Row | undefined;
  return row ? view(row) : undefined;
}

/** Removes a pin; NotFoundError when there is none (or no such subnet). */
export function deleteReservation(db: Database.Database, subnetId: number, mac: string): void {
  requireSubnet(db, subnetId);
  const r = getReservation(db, subnetId, mac);
  if (!r)
    throw new NotFoundError(`no reservation for ${mac} in subnet ${subnetId}`, { subnet_id: subnetId, mac });
  db.prepare('DELETE FROM dhcp_reservations WHERE subnet_id = ? AND mac = ?').run(subnetId, r.mac);
}

/** One page of a subnet's reservations in address order. */
export function listReservations(
  db: Database.Database,
  subnetId: number,
  opts: { limit?: number | undefined; cursor?: string | undefined } = {},
): Page<Reservation> {
  requireSubnet(db, subnetId);
  const limit = pageLimit(opts.limit);
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, 'ip') : undefined;
  const ks = keyset('r.ip_int', 'r.id', false, cursor);
  const where = ['r.subnet_id = ?'];
  const params: unknown[] = [subnetId];
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY ${ks.orderBy} LIMIT ?`)
    .all(...params, limit + 1) as Row[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return {
    items: rows.map(view),
    next: more && last ? encodeCursor({ sort: 'ip', value: last.ip_int, id: last.id }) : null,
  };
}

/**
 * Every pin of a subnet as DHCP needs it, the hostname falling back to the owning machine's. Only
 * pins inside the subnet's current CIDR: a subnet whose CIDR changed keeps its stale pins listed in
 * the API (the operator decides) but DHCP never hands them out.
 */
export function reservationsForDhcp(
  db: Database.Database,
  subnetId: number,
): Array<{ mac: string; ip: string; hostname: string | null }> {
  const subnet = db.prepare('SELECT cidr FROM subnets WHERE id = ?').get(subnetId) as
    | { cidr: string }
    | undefined;
  if (!subnet) return [];
  const cidr = parseCidr(subnet.cidr);
  const rows = db
    .prepare(
      `SELECT r.mac, r.ip, r.ip_int, COALESCE(r.hostname,
         (SELECT m.hostname FROM interfaces i JOIN machines m ON m.id = i.machine_id WHERE i.mac = r.mac)) AS hostname
       FROM dhcp_reservations r WHERE r.subnet_id = ? ORDER BY r.ip_int`,
    )
    .all(subnetId) as Array<{ mac: string; ip: string; ip_int: number; hostname: string | null }>;
  return rows
    .filter((r) => cidrContains(cidr, r.ip_int))
    .map((r) => ({ mac: r.mac, ip: r.ip, hostname: r.hostname }));
}
