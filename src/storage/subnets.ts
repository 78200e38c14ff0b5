import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError, ValidationError } from '../lib/errors.js';
import { broadcastOf, cidrContains, formatCidr, ipToInt, isIpv4, parseCidr } from '../lib/ipv4.js';
import { constraintKind } from './database.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';

/**
 * Subnets the region knows. DHCP serves a subnet only when it is `managed` and has a `rack_id`
 * (DESIGN.md: starting kiln must never disturb a network it was not told to serve); `proxy_mode`
 * means another server hands out addresses and kiln only answers the boot part.
 */
export interface Subnet {
  id: number;
  name: string;
  cidr: string;
  gateway: string | null;
  dns_servers: string[];
  dynamic_range: { start: string; end: string } | null;
  managed: boolean;
  proxy_mode: boolean;
  rack_id: number | null;
  created_at: string;
  updated_at: string;
}

export interface SubnetInput {
  name?: string | undefined;
  cidr?: string | undefined;
  gateway?: string | null | undefined;
  dns_servers?: string[] | undefined;
  dynamic_range?: { start: string; end: string } | null | undefined;
  managed?: boolean | undefined;
  proxy_mode?: boolean | undefined;
  rack_id?: number | null | undefined;
}

interface SubnetRow {
  id: number;
  name: string;
  cidr: string;
  gateway: string | null;
  dns_servers: string;
  dynamic_range_start: string | null;
  dynamic_range_end: string | null;
  managed: number;
  proxy_mode: number;
  rack_id: number | null;
  created_at: string;
  updated_at: string;
}

function fromRow(r: SubnetRow): Subnet {
  return {
    id: r.id,
    name: r.name,
    cidr: r.cidr,
    gateway: r.gateway,
    dns_servers: JSON.parse(r.dns_servers) as string[],
    dynamic_range:
      r.dynamic_range_start !== null && r.dynamic_range_end !== null
        ? { start: r.dynamic_range_start, end: r.dynamic_range_end }
        : null,
    managed: r.managed === 1,
    proxy_mode: r.proxy_mode === 1,
    rack_id: r.rack_id,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** The stored columns from name through rack_id, in the order INSERT and UPDATE list them. */
function subnetColumns(s: Omit<Subnet, 'id' | 'created_at' | 'updated_at'>): unknown[] {
  return [
    s.name,
    s.cidr,
    s.gateway,
    JSON.stringify(s.dns_servers),
    s.dynamic_range?.start ?? null,
    s.dynamic_range?.end ?? null,
    s.managed ? 1 : 0,
    s.proxy_mode ? 1 : 0,
    s.rack_id,
  ];
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`${field}: ${message}`, { issues: [{ field, message }] });
}

/** Every rule that involves more than one field: gateway and range inside the subnet, range ordered. */
function validate(s: Omit<Subnet, 'id' | 'created_at' | 'updated_at'>): void {
  let cidr: ReturnType<typeof parseCidr>;
  try {
    cidr = parseCidr(s.cidr);
  } catch (err) {
    throw invalid('cidr', (err as Error).message);
  }
  if (cidr.prefix > 30) throw invalid('cidr', 'prefix must be /30 or shorter to leave room for hosts');
  const inHostRange = (ip: number) =>
    cidrContains(cidr, ip) && ip !== cidr.network && ip !== broadcastOf(cidr);
  if (s.gateway !== null) {
    if (!isIpv4(s.gateway)) throw invalid('gateway', 'not an IPv4 address');
    if (!inHostRange(ipToInt(s.gateway)))
      throw invalid('gateway', `${s.gateway} is not a host address in ${s.cidr}`);
  }
  s.dns_servers.forEach((d, i) => {
    if (!isIpv4(d)) throw invalid(`dns_servers.${i}`, 'not an IPv4 address');
  });
  if (s.dynamic_range) {
    const { start, end } = s.dynamic_range;
    if (!isIpv4(start)) throw invalid('dynamic_range.start', 'not an IPv4 address');
    if (!isIpv4(end)) throw invalid('dynamic_range.end', 'not an IPv4 address');
    const a = ipToInt(start);
    const b = ipToInt(end);
    if (!inHostRange(a))
      throw invalid(
        'dynamic_range.start',
        `${start} is outside ${s.cidr} (or its network/broadcast address)`,
      );
    if (!inHostRange(b))
      throw invalid('dynamic_range.end', `${end} is outside ${s.cidr} (or its network/broadcast address)`);
    if (a > b) throw invalid('dynamic_range', 'start is after end');
    if (s.gateway !== null) {
      const g = ipToInt(s.gateway);
      if (g >= a && g <= b) throw invalid('dynamic_range', `contains the gateway ${s.gateway}`);
    }
  }
  if (s.name.length < 1 || s.name.length > 64) throw invalid('name', 'must be 1–64 characters');
}

function checkRack(db: Database.Database, rackId: number | null): void {
  if (rackId === null) return;
  if (!db.prepare('SELECT 1 FROM racks WHERE id = ?').get(rackId)) {
    throw invalid('rack_id', `no rack with id ${rackId}`);
  }
}

function rethrow(err: unknown, cidr: string): never {
  if (constraintKind(err) === 'unique')
    throw new ConflictError(`a subnet ${cidr} already exists`, { field: 'cidr', cidr });
  if (constraintKind(err) === 'foreign_key') throw invalid('rack_id', 'no such rack');
  throw err;
}

export function createSubnet(db: Database.Database, input: SubnetInput): Subnet {
  if (input.cidr === undefined) throw invalid('cidr', 'required');
  // Normalise (10.0.0.0/24 not 10.0.0.000/24) so the UNIQUE constraint sees one spelling.
  let cidr = input.cidr;
  try {
    cidr = formatCidr(parseCidr(input.cidr));
  } catch (err) {
    throw invalid('cidr', (err as Error).message);
  }
  const s = {
    name: input.name ?? cidr,
    cidr,
    gateway: input.gateway ?? null,
    dns_servers: input.dns_servers ?? [],
    dynamic_range: input.dynamic_range ?? null,
    managed: input.managed ?? false,
    proxy_mode: input.proxy_mode ?? false,
    rack_id: input.rack_id ?? null,
  };
  validate(s);
  const now = new Date().toISOString();
  const run = db.transaction(() => {
    checkRack(db, s.rack_id);
    if (db.prepare('SELECT 1 FROM subnets WHERE cidr = ?').get(cidr)) {
      throw new ConflictError(`a subnet ${cidr} already exists`, { field: 'cidr', cidr });
    }
    return db
      .prepare(
        `INSERT INTO subnets (name, cidr, gateway, dns_servers, dynamic_range_start, dynamic_range_end, managed,
           proxy_mode, rack_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...subnetColumns(s), now, now);
  });
  try {
    const info = run.immediate();
    return getSubnet(db, Number(info.lastInsertRowid))!;
  } catch (err) {
    rethrow(err, cidr);
  }
}

export function getSubnet(db: Database.Database, id: number): Subnet | undefined {
  const row = db.prepare('SELECT * FROM subnets WHERE id = ?').get(id) as SubnetRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function requireSubnet(db: Database.Database, id: number): Subnet {
  const s = getSubnet(db, id);
  if (!s) throw new NotFoundError(`no subnet with id ${id}`, { id });
  return s;
}

/** Merges the patch over the stored subnet and re-checks every rule on the result. */
export function updateSubnet(db: Database.Database, id: number, patch: SubnetInput): Subnet {
  const run = db.transaction(() => {
    const cur = requireSubnet(db, id);
    let cidr = cur.cidr;
    if (patch.cidr !== undefined) {
      try {
        cidr = formatCidr(parseCidr(patch.cidr));
      } catch (err) {
        throw invalid('cidr', (err as Error).message);
      }
    }
    const s = {
      name: patch.name ?? cur.name,
      cidr,
      gateway: patch.gateway !== undefined ? patch.gateway : cur.gateway,
      dns_servers: patch.dns_servers ?? cur.dns_servers,
      dynamic_range: patch.dynamic_range !== undefined ? patch.dynamic_range : cur.dynamic_range,
      managed: patch.managed ?? cur.managed,
      proxy_mode: patch.proxy_mode ?? cur.proxy_mode,
      rack_id: patch.rack_id !== undefined ? patch.rack_id : cur.rack_id,
    };
    validate(s);
    checkRack(db, s.rack_id);
    if (db.prepare('SELECT 1 FROM subnets WHERE cidr = ? AND id <> ?').get(cidr, id)) {
      throw new ConflictError(`a subnet ${cidr} already exists`, { field: 'cidr', cidr });
    }
    db.prepare(
      `UPDATE subnets SET name = ?, cidr = ?, gateway = ?, dns_servers = ?, dynamic_range_start = ?,
         dynamic_range_end = ?, managed = ?, proxy_mode = ?, rack_id = ?, updated_at = ? WHERE id = ?`,
    ).run(...subnetColumns(s), new Date().toISOString(), id);
    return cidr;
  });
  try {
    run.immediate();
  } catch (err) {
    rethrow(err, patch.cidr ?? '');
  }
  return requireSubnet(db, id);
}

export function deleteSubnet(db: Database.Database, id: number): void {
  if (db.prepare('DELETE FROM subnets WHERE id = ?').run(id).changes === 0) {
    throw new NotFoundError(`no subnet with id ${id}`, { id });
  }
}

export interface SubnetListOptions {
  limit?: number | undefined;
  cursor?: string | undefined;
  managed?: boolean | undefined;
  rack_id?: number | undefined;
}

export function listSubnets(db: Database.Database, opts: SubnetListOptions = {}): Page<Subnet> {
  const limit = pageLimit(opts.limit);
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, 'id') : undefined;
  const ks = keyset(undefined, 'id', false, cursor);
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.managed !== undefined) {
    where.push('managed = ?');
    params.push(opts.managed ? 1 : 0);
  }
  if (opts.rack_id !== undefined) {
    where.push('rack_id = ?');
    params.push(opts.rack_id);
  }
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(
      `SELECT * FROM subnets${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${ks.orderBy} LIMIT ?`,
    )
    .all(...params, limit + 1) as SubnetRow[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { items: rows.map(fromRow), next: more && last ? encodeCursor({ sort: 'id', id: last.id }) : null };
}

/** Subnets DHCP may serve for this rack: managed and assigned to it. */
export function managedSubnetsForRack(db: Database.Database, rackId: number): Subnet[] {
  return (
    db
      .prepare('SELECT * FROM subnets WHERE managed = 1 AND rack_id = ? ORDER BY id')
      .all(rackId) as SubnetRow[]
  ).map(fromRow);
}
