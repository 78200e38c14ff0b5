import { broadcastOf, cidrContains } from '../lib/ipv4.js';
import type { Mac } from '../lib/mac.js';
import type { DhcpReservation, DhcpSubnet, LeaseStore } from './dhcp-policy.js';

/** How long an offered address is held for the client it was offered to. */
export const OFFER_HOLD_MS = 30_000;

interface SubnetIndex {
  byMac: Map<Mac, DhcpReservation>;
  byIp: Map<number, DhcpReservation>;
  /** Next dynamic address to try: a rotating cursor keeps allocation O(1) amortised. */
  cursor: number;
  size: number;
}

/**
 * Chooses addresses: reservation first, then the client's own lease or offer, then the address it
 * asked for, then the next free one in the dynamic ranges. Offers live only in memory (a client that
 * never REQUESTs costs nothing durable); leases come from the LeaseStore.
 */
export class Allocator {
  private readonly index = new WeakMap<DhcpSubnet, SubnetIndex>();
  private readonly offersByIp = new Map<number, { mac: Mac; until: number }>();
  private readonly offersByMac = new Map<Mac, number>();

  constructor(private readonly store: LeaseStore) {}

  private idx(s: DhcpSubnet): SubnetIndex {
    let i = this.index.get(s);
    if (!i) {
      const byMac = new Map<Mac, DhcpReservation>();
      const byIp = new Map<number, DhcpReservation>();
      for (const r of s.reservations) {
        byMac.set(r.mac, r);
        byIp.set(r.ip, r);
      }
      const size = s.ranges.reduce((n, r) => n + Math.max(0, r.end - r.start + 1), 0);
      i = { byMac, byIp, cursor: 0, size };
      this.index.set(s, i);
    }
    return i;
  }

  reservationFor(s: DhcpSubnet, mac: Mac): DhcpReservation | undefined {
    return this.idx(s).byMac.get(mac);
  }

  inRange(s: DhcpSubnet, ip: number): boolean {
    for (const r of s.ranges) if (ip >= r.start && ip <= r.end) return true;
    return false;
  }

  /** May `mac` hold `ip` in this subnet right now? */
  usable(s: DhcpSubnet, mac: Mac, ip: number, now: number): boolean {
    if (!cidrContains(s.cidr, ip) || ip === s.cidr.network || ip === broadcastOf(s.cidr)) return false;
    if (ip === s.serverAddress) return false;
    const res = this.idx(s).byIp.get(ip);
    if (res) return res.mac === mac;
    if (!this.inRange(s, ip)) return false;
    const lease = this.store.byIp(ip);
    if (lease && lease.expiresAt > now) {
      if (lease.state === 'declined') return false;
      if (lease.state === 'active' && lease.mac !== mac) return false;
    }
    const offer = this.offersByIp.get(ip);
    if (offer && offer.mac !== mac && offer.until > now) return false;
    return true;
  }

  /** The address to offer `mac`, or null when the subnet has none left. */
  choose(s: DhcpSubnet, mac: Mac, requested: number | undefined, now: number): number | null {
    const res = this.reservationFor(s, mac);
    if (res && cidrContains(s.cidr, res.ip)) return res.ip;
    for (const lease of this.store.byMac(mac)) {
      if (lease.subnetId === s.id && lease.state !== 'declined' && this.usable(s, mac, lease.ip, now)) {
        return lease.ip;
      }
    }
    const offered = this.offersByMac.get(mac);
    if (offered !== undefined && this.usable(s, mac, offered, now)) return offered;
    if (requested !== undefined && requested !== 0 && this.usable(s, mac, requested, now)) return requested;
    const i = this.idx(s);
    for (let n = 0; n < i.size; n++) {
      const ip = this.nth(s, (i.cursor + n) % i.size);
      if (this.usable(s, mac, ip, now)) {
        i.cursor = (i.cursor + n + 1) % i.size;
        return ip;
      }
    }
    return null;
  }

  private nth(s: DhcpSubnet, k: number): number {
    for (const r of s.ranges) {
      const n = r.end - r.start + 1;
      if (k < n) return r.start + k;
      k -= n;
    }
    throw new RangeError('range index out of bounds');
  }

  hold(mac: Mac, ip: number, now: number): void {
    const prev = this.offersByMac.get(mac);
    if (prev !== undefined && prev !== ip) this.offersByIp.delete(prev);
    this.offersByIp.set(ip, { mac, until: now + OFFER_HOLD_MS });
    this.offersByMac.set(mac, ip);
    // Forget stale offers now and then so a scan of many one-shot clients cannot grow memory.
    if (this.offersByIp.size > 4096 && this.offersByIp.size % 1024 === 0) this.sweep(now);
  }

  drop(mac: Mac): void {
    const ip = this.offersByMac.get(mac);
    if (ip === undefined) return;
    this.offersByMac.delete(mac);
    if (this.offersByIp.get(ip)?.mac === mac) this.offersByIp.delete(ip);
  }

  private sweep(now: number): void {
    for (const [ip, o] of this.offersByIp) {
      if (o.until <= now) {
        this.offersByIp.delete(ip);
        if (this.offersByMac.get(o.mac) === ip) this.offersByMac.delete(o.mac);
      }
    }
  }
}
