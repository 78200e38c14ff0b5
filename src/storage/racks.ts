import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import { NotFoundError } from '../lib/errors.js';

export interface RackInterfaceRecord {
  name: string;
  mac: string | null;
  addresses: string[];
}

export interface RackConnectionRecord {
  id: string;
  worker_id: string;
  remote_address: string;
  connected_at: string;
}

export interface Rack {
  id: number;
  system_id: string;
  name: string;
  hostname: string;
  version: string;
  interfaces: RackInterfaceRecord[];
  last_seen: string | null;
  created_at: string;
  updated_at: string;
  /** Live RPC connections, one per region worker when the rack is whole. */
  connections: RackConnectionRecord[];
}

interface Row {
  id: number;
  system_id: string;
  name: string;
  hostname: string;
  version: string;
  interfaces: string;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function newSystemId(): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

function parseInterfaces(text: string): RackInterfaceRecord[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as RackInterfaceRecord[]) : [];
  } catch {
    return [];
  }
}

function connectionsOf(db: Database.Database, rackIds: number[]): Map<number, RackConnectionRecord[]> {
  const out = new Map<number, RackConnectionRecord[]>();
  if (rackIds.length === 0) return out;
  const rows = db
    .prepare(
      `SELECT c.rack_id, c.id, c.worker_id, c.remote_address, c.connected_at
       FROM rack_connections c JOIN region_workers w ON w.id = c.worker_id
       WHERE c.rack_id IN (${rackIds.map(() => '?').join(',')})
       ORDER BY c.worker_id, c.connected_at`,
    )
    .all(...rackIds) as Array<RackConnectionRecord & { rack_id: number }>;
  for (const { rack_id, ...c } of rows) {
    const list = out.get(rack_id) ?? [];
    list.push(c);
    out.set(rack_id, list);
  }
  return out;
}

function toRack(r: Row, conns: RackConnectionRecord[]): Rack {
  return { ...r, interfaces: parseInterfaces(r.interfaces), connections: conns };
}

export interface RegisterRackInput {
  system_id: string | null;
  hostname: string;
  name: string | null;
  version: string;
  interfaces: RackInterfaceRecord[];
}

/**
 * Create or update a rack from its registration. A known system_id updates that rack; an unknown
 * one (the region's database was reset) is re-created under the id the rack already holds; none
 * at all matches by host name before creating a new rack, so a rack that lost its state file
 * does not appear twice.
 */
export function registerRack(db: Database.Database, input: RegisterRackInput, nowMs: number): Rack {
  const now = new Date(nowMs).toISOString();
  const tx = db.transaction((): number => {
    let row: Row | undefined;
    if (input.system_id !== null) {
      row = db.prepare('SELECT * FROM racks WHERE system_id = ?').get(input.system_id) as Row | undefined;
    } else {
      row = db.prepare('SELECT * FROM racks WHERE hostname = ? ORDER BY id LIMIT 1').get(input.hostname) as
        | Row
        | undefined;
    }
    const interfaces = JSON.stringify(input.interfaces);
    if (row) {
      db.prepare(
        `UPDATE racks SET hostname = ?, name = ?, version = ?, interfaces = ?, last_seen = ?, updated_at = ?
         WHERE id = ?`,
      ).run(input.hostname, input.name ?? row.name, input.version, interfaces, now, now, row.id);
      return row.id;
    }
    for (let attempt = 0; ; attempt++) {
      const systemId = input.system_id ?? newSystemId();
      const exists = db.prepare('SELECT 1 FROM racks WHERE system_id = ?').get(systemId);
      if (exists && attempt < 10) continue;
      const r = db
        .prepare(
          `INSERT INTO racks (system_id, name, hostname, version, interfaces, last_seen, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          systemId,
          input.name ?? input.hostname,
          input.hostname,
          input.version,
          interfaces,
          now,
          now,
          now,
        );
      return Number(r.lastInsertRowid);
    }
  });
  const id = tx.immediate();
  return getRack(db, id);
}

/** Record that the rack was heard from (pings). */
export function touchRack(db: Database.Database, id: number, nowMs: number): void {
  db.prepare('UPDATE racks SET last_seen = ? WHERE id = ?').run(new Date(nowMs).toISOString(), id);
}

/** By numeric id or system_id. */
export function getRack(db: Database.Database, idOrSystemId: number | string): Rack {
  const row = (
    typeof idOrSystemId === 'number'
      ? db.prepare('SELECT * FROM racks WHERE id = ?').get(idOrSystemId)
      : db.prepare('SELECT * FROM racks WHERE system_id = ?').get(idOrSystemId)
  ) as Row | undefined;
  if (!row) throw new NotFoundError(`rack ${idOrSystemId} not found`, { rack: idOrSystemId });
  return toRack(row, connectionsOf(db, [row.id]).get(row.id) ?? []);
}

export function listRacks(db: Database.Database): Rack[] {
  const rows = db.prepare('SELECT * FROM racks ORDER BY id').all() as Row[];
  const conns = connectionsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toRack(r, conns.get(r.id) ?? []));
}
