import type Database from 'better-sqlite3';

/** A region worker process as recorded for discovery (/rpc) and the racks API. */
export interface RegionWorkerRecord {
  /** "<host>:pid=<pid>", MAAS's event-loop name. */
  id: string;
  host: string;
  pid: number;
  /** [[ip, port], ...] the worker's RPC server can be reached at. */
  rpc_addresses: Array<[string, number]>;
  http_port: number | null;
  started_at: string;
  heartbeat_ms: number;
}

interface Row {
  id: string;
  host: string;
  pid: number;
  rpc_addresses: string;
  http_port: number | null;
  started_at: string;
  heartbeat_ms: number;
}

function fromRow(r: Row): RegionWorkerRecord {
  let addrs: Array<[string, number]> = [];
  try {
    addrs = JSON.parse(r.rpc_addresses) as Array<[string, number]>;
  } catch {
    addrs = [];
  }
  return { ...r, rpc_addresses: addrs };
}

export function upsertRegionWorker(
  db: Database.Database,
  w: Omit<RegionWorkerRecord, 'started_at' | 'heartbeat_ms'>,
  nowMs: number,
): void {
  db.prepare(
    `INSERT INTO region_workers (id, host, pid, rpc_addresses, http_port, started_at, heartbeat_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET rpc_addresses = excluded.rpc_addresses,
       http_port = excluded.http_port, heartbeat_ms = excluded.heartbeat_ms`,
  ).run(
    w.id,
    w.host,
    w.pid,
    JSON.stringify(w.rpc_addresses),
    w.http_port,
    new Date(nowMs).toISOString(),
    nowMs,
  );
}

/** Returns false when the row is gone (expired by another worker): the caller re-records itself. */
export function heartbeatRegionWorker(db: Database.Database, id: string, nowMs: number): boolean {
  return db.prepare('UPDATE region_workers SET heartbeat_ms = ? WHERE id = ?').run(nowMs, id).changes > 0;
}

export function deleteRegionWorker(db: Database.Database, id: string): void {
  db.prepare('DELETE FROM region_workers WHERE id = ?').run(id);
}

/** Delete workers whose last heartbeat is older than `cutoffMs`; their connections go with them. */
export function expireRegionWorkers(db: Database.Database, cutoffMs: number): number {
  return db.prepare('DELETE FROM region_workers WHERE heartbeat_ms < ?').run(cutoffMs).changes;
}

export function listRegionWorkers(db: Database.Database, sinceMs = 0): RegionWorkerRecord[] {
  return (
    db
      .prepare('SELECT * FROM region_workers WHERE heartbeat_ms >= ? ORDER BY host, pid')
      .all(sinceMs) as Row[]
  ).map(fromRow);
}

export function addRackConnection(
  db: Database.Database,
  c: { id: string; worker_id: string; rack_id: number; remote_address: string },
  nowMs: number,
): void {
  db.prepare(
    `INSERT INTO rack_connections (id, worker_id, rack_id, remote_address, connected_at)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET rack_id = excluded.rack_id`,
  ).run(c.id, c.worker_id, c.rack_id, c.remote_address, new Date(nowMs).toISOString());
}

export function removeRackConnection(db: Database.Database, id: string): void {
  db.prepare('DELETE FROM rack_connections WHERE id = ?').run(id);
}
