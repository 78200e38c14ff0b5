import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import { ConflictError, NotFoundError, ValidationError } from '../lib/errors.js';
import { parseMac } from '../lib/mac.js';
import { constraintKind } from './database.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';

/** MAAS's machine statuses, by the names MAAS operators know. */
export const MACHINE_STATUSES = [
  'NEW',
  'COMMISSIONING',
  'FAILED_COMMISSIONING',
  'READY',
  'ALLOCATED',
  'DEPLOYING',
  'DEPLOYED',
  'FAILED_DEPLOYMENT',
  'RELEASING',
  'FAILED_RELEASING',
  'BROKEN',
  'RESCUE_MODE',
  'ENTERING_RESCUE_MODE',
  'FAILED_ENTERING_RESCUE_MODE',
  'EXITING_RESCUE_MODE',
  'FAILED_EXITING_RESCUE_MODE',
  'TESTING',
  'FAILED_TESTING',
  'MISSING',
  'RETIRED',
] as const;
export type MachineStatus = (typeof MACHINE_STATUSES)[number];

export interface MachineInterface {
  name: string;
  mac: string;
  is_boot: boolean;
}

export type PowerParameters = Record<string, string | number | boolean | null>;

export interface Machine {
  id: number;
  system_id: string;
  hostname: string;
  architecture: string;
  status: MachineStatus;
  description: string;
  boot_mac: string | null;
  interfaces: MachineInterface[];
  power_type: string;
  /** In clear: only the API layer masks secrets (maskPowerParameters); power drivers need them. */
  power_parameters: PowerParameters;
  zone: string;
  pool: string;
  tags: string[];
  hardware: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
}

export interface InterfaceInput {
  name?: string | undefined;
  mac: string;
}

export interface MachineInput {
  hostname?: string | undefined;
  architecture?: string | undefined;
  status?: MachineStatus | undefined;
  description?: string | undefined;
  /** The MAC the machine network-boots from; added to interfaces when not listed there. */
  boot_mac?: string | undefined;
  interfaces?: InterfaceInput[] | undefined;
  power_type?: string | undefined;
  power_parameters?: PowerParameters | undefined;
  zone?: string | undefined;
  pool?: string | undefined;
  tags?: string[] | undefined;
  hardware?: Record<string, unknown> | null | undefined;
}

export const MACHINE_SORTS = [
  'id',
  'hostname',
  'system_id',
  'status',
  'architecture',
  'zone',
  'pool',
  'created_at',
  'updated_at',
] as const;
export type MachineSortField = (typeof MACHINE_SORTS)[number];

export interface MachineFilter {
  status?: MachineStatus[] | undefined;
  hostname?: string | undefined;
  mac?: string | undefined;
  tag?: string | undefined;
  zone?: string | undefined;
  pool?: string | undefined;
  architecture?: string | undefined;
}

export interface MachineListOptions extends MachineFilter {
  /** A field, `-field` for descending. Default `id` (creation order). */
  sort?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

// RFC 1123 host name labels; MAAS also keeps hostnames to one label (the domain is separate).
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ARCH = /^[a-z0-9_]+\/[a-z0-9_.-]+$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,31}$/;
const SYSTEM_ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

export const DEFAULT_ARCHITECTURE = 'amd64/generic';

function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new ValidationError(`${field}: ${message}`, { issues: [{ field, message }] });
}

/** A short random id like MAAS's (`4y3h7n`): easy to read aloud and type, unique by the column constraint. */
export function newSystemId(): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += SYSTEM_ID_CHARS[randomInt(SYSTEM_ID_CHARS.length)];
  return s;
}

// biome-ignore format: a word list reads better packed
const ADJECTIVES = [
  'amber', 'brave', 'calm', 'clever', 'crisp', 'eager', 'fancy', 'gentle', 'happy', 'humble', 'jolly',
  'keen', 'lively', 'lucky', 'mellow', 'merry', 'nimble', 'noble', 'polite', 'proud', 'quick', 'quiet',
  'rapid', 'sharp', 'shiny', 'smart', 'steady', 'sunny', 'swift', 'tidy', 'vivid', 'witty',
];
// biome-ignore format: a word list reads better packed
const NOUNS = [
  'badger', 'beaver', 'bison', 'condor', 'coyote', 'crane', 'falcon', 'ferret', 'gecko', 'heron',
  'ibex', 'jackal', 'koala', 'lemur', 'lynx', 'marten', 'moose', 'newt', 'otter', 'panda', 'puffin',
  'quail', 'raven', 'salmon', 'stoat', 'tapir', 'toucan', 'walrus', 'wombat', 'yak', 'zebra', 'osprey',
];

/** Two words, as MAAS names new machines; a system id suffix once the short names run out. */
function generateHostname(db: Database.Database, systemId: string): string {
  const taken = db.prepare('SELECT 1 FROM machines WHERE hostname = ?');
  for (let i = 0; i < 8; i++) {
    const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}`;
    if (!taken.get(name)) return name;
  }
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${systemId}`;
}

/** Power parameter names whose values are credentials; they never leave the region in clear. */
const SECRET_KEY = /pass|secret|token|key|community|credential|cookie/i;
export const MASK = '********';

export function maskPowerParameters(p: PowerParameters): PowerParameters {
  const out: PowerParameters = {};
  for (const [k, v] of Object.entries(p)) out[k] = SECRET_KEY.test(k) && v !== null && v !== '' ? MASK : v;
  return out;
}

interface MachineRow {
  id: number;
  system_id: string;
  hostname: string;
  architecture: string;
  status: MachineStatus;
  description: string;
  power_type: string;
  power_parameters: string;
  zone: string;
  pool: string;
  hardware: string | null;
  created_at: string;
  updated_at: string;
}

const SELECT_MACHINE =
  'SELECT m.id, m.system_id, m.hostname, m.architecture, m.status, m.description, m.power_type, ' +
  'm.power_parameters, m.zone, m.pool, m.hardware, m.created_at, m.updated_at FROM machines m';

/** Loads interfaces and tags for many machines with two queries, not two per machine. */
function hydrate(db: Database.Database, rows: MachineRow[]): Machine[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const marks = ids.map(() => '?').join(',');
  const ifaces = db
    .prepare(
      `SELECT machine_id, name, mac, is_boot FROM interfaces WHERE machine_id IN (${marks}) ORDER BY machine_id, is_boot DESC, id`,
    )
    .all(...ids) as Array<{ machine_id: number; name: string; mac: string; is_boot: number }>;
  const tags = db
    .prepare(
      `SELECT machine_id, tag FROM machine_tags WHERE machine_id IN (${marks}) ORDER BY machine_id, tag`,
    )
    .all(...ids) as Array<{ machine_id: number; tag: string }>;
  const byId = new Map<number, Machine>();
  const out = rows.map((r) => {
    const m: Machine = {
      id: r.id,
      system_id: r.system_id,
      hostname: r.hostname,
      architecture: r.architecture,
      status: r.status,
      description: r.description,
      boot_mac: null,
      interfaces: [],
      power_type: r.power_type,
      power_parameters: JSON.parse(r.power_parameters) as PowerParameters,
      zone: r.zone,
      pool: r.pool,
      tags: [],
      hardware: r.hardware === null ? null : (JSON.parse(r.hardware) as Record<string, unknown>),
      created_at: r.created_at,
      updated_at: r.updated_at,
    };
    byId.set(r.id, m);
    return m;
  });
  for (const i of ifaces) {
    const m = byId.get(i.machine_id)!;
    m.interfaces.push({ name: i.name, mac: i.mac, is_boot: i.is_boot === 1 });
    if (i.is_boot === 1) m.boot_mac = i.mac;
  }
  for (const t of tags) byId.get(t.machine_id)!.tags.push(t.tag);
  return out;
}

function validateScalars(input: MachineInput): void {
  if (input.hostname !== undefined)
    check(
      HOSTNAME.test(input.hostname),
      'hostname',
      'must be a host name label: a-z, 0-9 and -, 1–63 characters',
    );
  if (input.architecture !== undefined)
    check(ARCH.test(input.architecture), 'architecture', 'must look like arch/subarch, e.g. amd64/generic');
  if (input.status !== undefined)
    check((MACHINE_STATUSES as readonly string[]).includes(input.status), 'status', 'unknown status');
  for (const f of ['zone', 'pool', 'power_type'] as const) {
    const v = input[f];
    if (v !== undefined) check(NAME.test(v), f, 'must be 1–64 characters: letters, digits, _ . : -');
  }
  if (input.description !== undefined)
    check(input.description.length <= 1000, 'description', 'at most 1000 characters');
  if (input.tags !== undefined)
    for (const [i, t] of input.tags.entries()) {
      check(NAME.test(t), `tags.${i}`, 'must be 1–64 characters: letters, digits, _ . : -');
    }
}

/** Boot MAC + interface list → the rows to store, MACs normalised, exactly one boot interface. */
function planInterfaces(
  bootMac: string | undefined,
  list: InterfaceInput[] | undefined,
): Array<{ name: string; mac: string; is_boot: boolean }> {
  const out: Array<{ name: string; mac: string; is_boot: boolean }> = [];
  const seen = new Set<string>();
  (list ?? []).forEach((iface, i) => {
    let mac: string;
    try {
      mac = parseMac(iface.mac);
    } catch {
      throw new ValidationError(`interfaces.${i}.mac: not a MAC address`, {
        issues: [{ field: `interfaces.${i}.mac`, message: 'not a MAC address' }],
      });
    }
    if (seen.has(mac)) throw new ValidationError(`interfaces.${i}.mac: ${mac} is listed twice`);
    seen.add(mac);
    const name = iface.name ?? `eth${i}`;
    check(IFNAME.test(name), `interfaces.${i}.name`, 'must be 1–32 characters: letters, digits, _ . : @ -');
    out.push({ name, mac, is_boot: false });
  });
  let boot: string | undefined;
  if (bootMac !== undefined) {
    try {
      boot = parseMac(bootMac);
    } catch {
      throw new ValidationError('boot_mac: not a MAC address', {
        issues: [{ field: 'boot_mac', message: 'not a MAC address' }],
      });
    }
  }
  if (boot !== undefined && !seen.has(boot)) {
    let n = out.length;
    while (out.some((o) => o.name === `eth${n}`)) n++;
    out.unshift({ name: `eth${n}`, mac: boot, is_boot: false });
  }
  const bootIndex = boot !== undefined ? out.findIndex((o) => o.mac === boot) : 0;
  if (out[bootIndex]) out[bootIndex].is_boot = true;
  return out;
}

function checkMacsFree(db: Database.Database, macs: string[], exceptMachineId: number | undefined): void {
  const owner = db.prepare(
    'SELECT m.system_id, m.hostname FROM interfaces i JOIN machines m ON m.id = i.machine_id WHERE i.mac = ? AND i.machine_id <> ?',
  );
  for (const mac of macs) {
    const row = owner.get(mac, exceptMachineId ?? -1) as { system_id: string; hostname: string } | undefined;
    if (row) {
      throw new ConflictError(`MAC ${mac} already belongs to machine ${row.system_id} (${row.hostname})`, {
        field: 'mac',
        mac,
        system_id: row.system_id,
      });
    }
  }
}

function checkHostnameFree(
  db: Database.Database,
  hostname: string,
  exceptMachineId: number | undefined,
): void {
  const row = db
    .prepare('SELECT system_id FROM machines WHERE hostname = ? AND id <> ?')
    .get(hostname, exceptMachineId ?? -1) as { system_id: string } | undefined;
  if (row) {
    throw new ConflictError(`hostname '${hostname}' is already used by machine ${row.system_id}`, {
      field: 'hostname',
      hostname,
      system_id: row.system_id,
    });
  }
}

/** A UNIQUE violation that slipped past the checks (a concurrent writer) still becomes a 409. */
function rethrowConstraint(err: unknown): never {
  if (constraintKind(err) === 'unique') {
    const msg = (err as Error).message;
    const field = msg.includes('hostname') ? 'hostname' : msg.includes('mac') ? 'mac' : 'system_id';
    throw new ConflictError(`a machine with this ${field} already exists`, { field });
  }
  throw err;
}

function writeInterfaces(
  db: Database.Database,
  machineId: number,
  rows: ReturnType<typeof planInterfaces>,
  now: string,
) {
  const ins = db.prepare(
    'INSERT INTO interfaces (machine_id, name, mac, is_boot, created_at) VALUES (?, ?, ?, ?, ?)',
  );
  for (const r of rows) ins.run(machineId, r.name, r.mac, r.is_boot ? 1 : 0, now);
}

function writeTags(db: Database.Database, machineId: number, tags: string[]) {
  const ins = db.prepare('INSERT INTO machine_tags (machine_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING');
  for (const t of tags) ins.run(machineId, t);
}

/**
 * Creates a machine with its interfaces and tags in one transaction: either all of it is stored or
 * none. A taken MAC or hostname is a ConflictError naming the machine that holds it.
 */
export function createMachine(db: Database.Database, input: MachineInput): Machine {
  validateScalars(input);
  const ifaces = planInterfaces(input.boot_mac, input.interfaces);
  const run = db.transaction((): number => {
    checkMacsFree(
      db,
      ifaces.map((i) => i.mac),
      undefined,
    );
    if (input.hostname !== undefined) checkHostnameFree(db, input.hostname, undefined);
    const now = new Date().toISOString();
    const insert = db.prepare(
      `INSERT INTO machines (system_id, hostname, architecture, status, power_type, power_parameters, zone, pool,
         description, hardware, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const exists = db.prepare('SELECT 1 FROM machines WHERE system_id = ?');
    let systemId = newSystemId();
    while (exists.get(systemId)) systemId = newSystemId();
    const info = insert.run(
      systemId,
      input.hostname ?? generateHostname(db, systemId),
      input.architecture ?? DEFAULT_ARCHITECTURE,
      input.status ?? 'NEW',
      input.power_type ?? 'manual',
      JSON.stringify(input.power_parameters ?? {}),
      input.zone ?? 'default',
      input.pool ?? 'default',
      input.description ?? '',
      input.hardware == null ? null : JSON.stringify(input.hardware),
      now,
      now,
    );
    const id = Number(info.lastInsertRowid);
    writeInterfaces(db, id, ifaces, now);
    writeTags(db, id, input.tags ?? []);
    return id;
  });
  return writeAndLoad(db, run);
}

/** Run a write transaction that yields a machine id (constraint failures → 409s), then load it. */
function writeAndLoad(db: Database.Database, run: Database.Transaction<() => number>): Machine {
  let id: number;
  try {
    id = run.immediate();
  } catch (err) {
    rethrowConstraint(err);
  }
  return getMachineById(db, id)!;
}

export function getMachineById(db: Database.Database, id: number): Machine | undefined {
  const row = db.prepare(`${SELECT_MACHINE} WHERE m.id = ?`).get(id) as MachineRow | undefined;
  return row ? hydrate(db, [row])[0] : undefined;
}

export function getMachine(db: Database.Database, systemId: string): Machine | undefined {
  const row = db.prepare(`${SELECT_MACHINE} WHERE m.system_id = ?`).get(systemId) as MachineRow | undefined;
  return row ? hydrate(db, [row])[0] : undefined;
}

export function requireMachine(db: Database.Database, systemId: string): Machine {
  const m = getMachine(db, systemId);
  if (!m) throw new NotFoundError(`no machine with system_id '${systemId}'`, { system_id: systemId });
  return m;
}

/** The machine owning this MAC on any of its interfaces (the boot path's lookup). */
export function findMachineByMac(db: Database.Database, mac: string): Machine | undefined {
  const row = db
    .prepare(`${SELECT_MACHINE} JOIN interfaces i ON i.machine_id = m.id WHERE i.mac = ?`)
    .get(parseMac(mac)) as MachineRow | undefined;
  return row ? hydrate(db, [row])[0] : undefined;
}

/**
 * Changes the given fields. `interfaces` (and/or `boot_mac`) replaces the interface set;
 * `tags` replaces the tags; `power_parameters` replaces the parameters, except that a value sent
 * back as the mask keeps the stored secret (so a client can round-trip what it read).
 */
export function updateMachine(db: Database.Database, systemId: string, patch: MachineInput): Machine {
  validateScalars(patch);
  const run = db.transaction((): number => {
    const current = requireMachine(db, systemId);
    const sets: string[] = [];
    const params: unknown[] = [];
    const set = (col: string, v: unknown) => {
      sets.push(`${col} = ?`);
      params.push(v);
    };
    if (patch.hostname !== undefined && patch.hostname !== current.hostname) {
      checkHostnameFree(db, patch.hostname, current.id);
      set('hostname', patch.hostname);
    }
    if (patch.architecture !== undefined) set('architecture', patch.architecture);
    if (patch.status !== undefined) set('status', patch.status);
    if (patch.description !== undefined) set('description', patch.description);
    if (patch.power_type !== undefined) set('power_type', patch.power_type);
    if (patch.zone !== undefined) set('zone', patch.zone);
    if (patch.pool !== undefined) set('pool', patch.pool);
    if (patch.hardware !== undefined)
      set('hardware', patch.hardware === null ? null : JSON.stringify(patch.hardware));
    if (patch.power_parameters !== undefined) {
      const merged: PowerParameters = {};
      for (const [k, v] of Object.entries(patch.power_parameters)) {
        merged[k] = v === MASK && k in current.power_parameters ? current.power_parameters[k]! : v;
      }
      set('power_parameters', JSON.stringify(merged));
    }
    const now = new Date().toISOString();
    if (patch.interfaces !== undefined || patch.boot_mac !== undefined) {
      // Only boot_mac given: keep the other interfaces and move the boot flag (adding the MAC if new).
      const list = patch.interfaces ?? current.interfaces.map((i) => ({ name: i.name, mac: i.mac }));
      const rows = planInterfaces(
        patch.boot_mac ?? (patch.interfaces ? undefined : (current.boot_mac ?? undefined)),
        list,
      );
      checkMacsFree(
        db,
        rows.map((r) => r.mac),
        current.id,
      );
      db.prepare('DELETE FROM interfaces WHERE machine_id = ?').run(current.id);
      writeInterfaces(db, current.id, rows, now);
    }
    if (patch.tags !== undefined) {
      db.prepare('DELETE FROM machine_tags WHERE machine_id = ?').run(current.id);
      writeTags(db, current.id, patch.tags);
    }
    set('updated_at', now);
    db.prepare(`UPDATE machines SET ${sets.join(', ')} WHERE id = ?`).run(...params, current.id);
    return current.id;
  });
  return writeAndLoad(db, run);
}

export function setMachineStatus(db: Database.Database, systemId: string, status: MachineStatus): Machine {
  return updateMachine(db, systemId, { status });
}

/** Deletes a machine with its interfaces, tags and events (ON DELETE CASCADE). */
export function deleteMachine(db: Database.Database, systemId: string): void {
  const info = db.prepare('DELETE FROM machines WHERE system_id = ?').run(systemId);
  if (info.changes === 0)
    throw new NotFoundError(`no machine with system_id '${systemId}'`, { system_id: systemId });
}

function parseSort(sort: string | undefined): { field: MachineSortField; descending: boolean; key: string } {
  const s = sort ?? 'id';
  const descending = s.startsWith('-');
  const field = (descending ? s.slice(1) : s) as MachineSortField;
  if (!(MACHINE_SORTS as readonly string[]).includes(field)) {
    throw new ValidationError(`sort: must be one of ${MACHINE_SORTS.join(', ')} (prefix - for descending)`, {
      issues: [{ field: 'sort', message: 'unknown sort field' }],
    });
  }
  return { field, descending, key: s };
}

/**
 * One page of machines. Filters are exact matches (status may list several); every value is a
 * bound parameter, so whatever a client puts in a filter is only ever compared, never run.
 */
export function listMachines(db: Database.Database, opts: MachineListOptions = {}): Page<Machine> {
  const limit = pageLimit(opts.limit);
  const sort = parseSort(opts.sort);
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.status?.length) {
    for (const s of opts.status) {
      check((MACHINE_STATUSES as readonly string[]).includes(s), 'status', `unknown status '${s}'`);
    }
    where.push(`m.status IN (${opts.status.map(() => '?').join(',')})`);
    params.push(...opts.status);
  }
  for (const f of ['hostname', 'zone', 'pool', 'architecture'] as const) {
    const v = opts[f];
    if (v !== undefined) {
      where.push(`m.${f} = ?`);
      params.push(v);
    }
  }
  if (opts.mac !== undefined) {
    let mac: string;
    try {
      mac = parseMac(opts.mac);
    } catch {
      throw new ValidationError('mac: not a MAC address', {
        issues: [{ field: 'mac', message: 'not a MAC address' }],
      });
    }
    where.push('EXISTS (SELECT 1 FROM interfaces i WHERE i.machine_id = m.id AND i.mac = ?)');
    params.push(mac);
  }
  if (opts.tag !== undefined) {
    where.push('EXISTS (SELECT 1 FROM machine_tags t WHERE t.machine_id = m.id AND t.tag = ?)');
    params.push(opts.tag);
  }
  const column = sort.field === 'id' ? undefined : `m.${sort.field}`;
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, sort.key) : undefined;
  const ks = keyset(column, 'm.id', sort.descending, cursor);
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const sql = `${SELECT_MACHINE}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${ks.orderBy} LIMIT ?`;
  const rows = db.prepare(sql).all(...params, limit + 1) as MachineRow[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  const next =
    more && last
      ? encodeCursor({
          sort: sort.key,
          value: sort.field === 'id' ? null : (last[sort.field] as string),
          id: last.id,
        })
      : null;
  return { items: hydrate(db, rows), next };
}

export function countMachinesByStatus(db: Database.Database): Partial<Record<MachineStatus, number>> {
  const rows = db.prepare('SELECT status, COUNT(*) AS n FROM machines GROUP BY status').all() as Array<{
    status: MachineStatus;
    n: number;
  }>;
  const out: Partial<Record<MachineStatus, number>> = {};
  for (const r of rows) out[r.status] = r.n;
  return out;
}
