import type { Mac } from '../lib/mac.js';
import type { RackDb } from './rack-db.js';

/** The shape the DHCP server stores; structurally the same as net/dhcp-policy's Lease. */
export interface StoredLease {
  ip: number;
  mac: Mac;
  clientId: string | null;
  subnetId: string;
  expiresAt: number;
  hostname: string | null;
  state: 'active' | 'released' | 'declined';
}

interface Row {
  ip: number;
  mac: string;
  client_id: string | null;
  subnet_id: string;
  expires_at: number;
  hostname: string | null;
  state: StoredLease['state'];
}

/**
 * DHCP leases: all in memory for reads, written to rack.db in batches. `put` only queues; `flush`
 * writes every queued lease in one transaction (one WAL commit for a whole burst of clients), which is
 * what lets the server keep up with Kea while still promising nothing it has not stored.
 */
function fromRow(r: Row): StoredLease {
  return {
    ip: r.ip,
    mac: r.mac as Mac,
    clientId: r.client_id,
    subnetId: r.subnet_id,
    expiresAt: r.expires_at,
    hostname: r.hostname,
    state: r.state,
  };
}

export class LeaseDb {
  private readonly byIpMap = new Map<number, StoredLease>();
  private readonly byMacMap = new Map<Mac, Set<number>>();
  private dirty = new Map<number, StoredLease>();
  /** Version stamp of the last flush; strictly increasing so markReported never skips a newer change. */
  private lastStamp = 0;
  private readonly upsert;
  private readonly writeBatch;

  constructor(
    private readonly db: RackDb,
    private readonly clock: () => number = Date.now,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO dhcp_lease (ip, mac, client_id, subnet_id, expires_at, hostname, state, updated_at, reported)
       VALUES (@ip, @mac, @clientId, @subnetId, @expiresAt, @hostname, @state, @now, 0)
       ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id,
         subnet_id = excluded.subnet_id, expires_at = excluded.expires_at, hostname = excluded.hostname,
         state = excluded.state, updated_at = excluded.updated_at, reported = 0`,
    );
    this.writeBatch = db.transaction((leases: StoredLease[], now: number) => {
      for (const l of leases) this.upsert.run({ ...l, now });
    });
    const last = db.prepare('SELECT MAX(updated_at) AS m FROM dhcp_lease').get() as { m: number | null };
    this.lastStamp = last.m ?? 0;
    for (const r of db.prepare('SELECT * FROM dhcp_lease').all() as Row[]) {
      this.index(fromRow(r));
    }
  }

  private index(l: StoredLease): void {
    const prev = this.byIpMap.get(l.ip);
    if (prev && prev.mac !== l.mac) this.byMacMap.get(prev.mac)?.delete(l.ip);
    this.byIpMap.set(l.ip, l);
    let set = this.byMacMap.get(l.mac);
    if (!set) {
      set = new Set();
      this.byMacMap.set(l.mac, set);
    }
    set.add(l.ip);
  }

  byIp(ip: number): StoredLease | undefined {
    return this.byIpMap.get(ip);
  }

  byMac(mac: Mac): StoredLease[] {
    const set = this.byMacMap.get(mac);
    if (!set) return [];
    const out: StoredLease[] = [];
    for (const ip of set) {
      const l = this.byIpMap.get(ip);
      if (l) out.push(l);
    }
    return out;
  }

  put(lease: StoredLease): void {
    const l = { ...lease };
    this.index(l);
    this.dirty.set(l.ip, l);
  }

  /** Write every lease queued since the last flush, in one transaction. */
  flush(): void {
    if (this.dirty.size === 0) return;
    const batch = [...this.dirty.values()];
    const stamp = Math.max(this.clock(), this.lastStamp + 1);
    this.writeBatch(batch, stamp);
    this.lastStamp = stamp;
    this.dirty = new Map();
  }

  /** Every lease of a subnet (for the region), active first. */
  list(subnetId?: string): StoredLease[] {
    const out = [...this.byIpMap.values()].filter((l) => subnetId === undefined || l.subnetId === subnetId);
    return out.sort((a, b) => a.ip - b.ip);
  }

  /**
   * Leases the region has not acknowledged, oldest change first, at most `limit`. The caller sends
   * them over RPC and then calls `markReported` with the same list.
   */
  unreported(limit = 1000): Array<StoredLease & { updatedAt: number }> {
    this.flush();
    const rows = this.db
      .prepare('SELECT * FROM dhcp_lease WHERE reported = 0 ORDER BY updated_at LIMIT ?')
      .all(limit) as Array<Row & { updated_at: number }>;
    return rows.map((r) => ({ ...fromRow(r), updatedAt: r.updated_at }));
  }

  /** Mark reported only rows unchanged since they were read (a newer change is sent next time). */
  markReported(leases: ReadonlyArray<{ ip: number; updatedAt: number }>): void {
    const st = this.db.prepare('UPDATE dhcp_lease SET reported = 1 WHERE ip = ? AND updated_at = ?');
    this.db.transaction(() => {
      for (const l of leases) st.run(l.ip, l.updatedAt);
    })();
  }

  /** Drop released and expired rows older than `olderThanMs` so the table does not grow forever. */
  prune(olderThanMs: number): number {
    this.flush();
    const cutoff = this.clock() - olderThanMs;
    const gone = this.db
      .prepare('DELETE FROM dhcp_lease WHERE expires_at < ? AND reported = 1 RETURNING ip')
      .all(cutoff) as Array<{ ip: number }>;
    for (const { ip } of gone) {
      const l = this.byIpMap.get(ip);
      if (l) {
        this.byIpMap.delete(ip);
        this.byMacMap.get(l.mac)?.delete(ip);
      }
    }
    return gone.length;
  }
}
