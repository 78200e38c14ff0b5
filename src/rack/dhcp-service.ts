import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../lib/errors.js';
import { broadcastOf, cidrContains, formatCidr, intToIp, ipToInt, parseCidr } from '../lib/ipv4.js';
import type { Logger } from '../lib/logger.js';
import { type Mac, parseMac } from '../lib/mac.js';
import type {
  BootAnswer,
  BootQuery,
  DhcpPolicy,
  DhcpSubnet,
  Lease,
  SubnetQuery,
} from '../net/dhcp-policy.js';
import { probeDhcpServer } from '../net/dhcp-probe.js';
import { type DhcpNative, DhcpServer } from '../net/dhcp-server.js';
import { type Ipv6RaNative, Ipv6RaResponder } from '../net/ipv6-ra.js';
import type { DhcpConfig, LeaseRecord } from '../rpc/commands/dhcp.js';
import { LeaseDb } from '../storage/leases.js';
import { openRackDb, type RackDb } from '../storage/rack-db.js';
import { defaultBootAnswer } from './dhcp-boot.js';

/** Something the operator should see in the region's event log. */
export interface DhcpEvent {
  type: 'dhcp.rogue_server' | 'dhcp.interface_unserved' | 'dhcp.bad_subnet' | 'dhcp.serving';
  level: 'info' | 'warning' | 'error';
  text: string;
  data: Record<string, unknown>;
}

export interface DhcpServiceOptions {
  dataDir: string;
  /** rack.dhcp.port / proxy_port; tests in namespaces use the real ones. */
  port: number;
  proxyPort: number | null;
  /** rack.dhcp.interfaces: when non-empty, only these may be served. */
  allowedInterfaces: readonly string[];
  httpPort: number;
  advertiseAddress?: string;
  logger: Logger;
  /** The booter's answer; defaults to defaultBootAnswer (pxe table + rack HTTP URL). */
  boot?: (q: BootQuery) => BootAnswer | null;
  /**
   * The native addon (reusePortSocket + bindToDevice); without it only one interface can be served.
   * Its raw ICMPv6 sockets (icmp6Status, openIcmp6Socket) carry the IPv6 RA responder.
   */
  native?: (DhcpNative & Partial<Ipv6RaNative>) | null;
  /**
   * rack.dhcp.ipv6_ra: answer IPv6 router solicitations on served interfaces with a lifetime-0,
   * prefix-less advertisement, so iPXE does not wait ~16 s for IPv6 autoconfiguration. Default false
   * here; the rack passes the config value (true by default).
   */
  ipv6Ra?: boolean;
  /** How long to listen for another DHCP server before serving a managed subnet; 0 skips the probe. */
  probeTimeoutMs?: number;
  onEvent?: (e: DhcpEvent) => void;
  onLease?: (l: Lease) => void;
  /** Local interfaces; os.networkInterfaces() unless given. */
  listInterfaces?: typeof networkInterfaces;
  durability?: 'normal' | 'full';
  /**
   * How often interfaces are looked at again. An interface whose link is down (a bridge whose
   * only port is a tap nobody opened yet) is invisible until it comes up, and must then be served
   * without waiting for a configuration change.
   */
  rescanMs?: number;
}

interface Served {
  ifname: string;
  address: number;
  subnet: DhcpSubnet;
}

/**
 * Starts, re-configures and stops the rack's DHCP server from the region's DhcpConfig. Safety rules
 * live here (DESIGN.md): nothing is served until a subnet arrives in the config (the region sends only
 * managed subnets assigned to this rack), only interfaces with an address inside such a subnet are
 * served, and a managed subnet where another DHCP server answers is refused with an event.
 */
export class DhcpService implements DhcpPolicy {
  readonly leases: LeaseDb;
  private readonly db: RackDb;
  private server: DhcpServer | null = null;
  private served: Served[] = [];
  private subnets: DhcpSubnet[] = [];
  private readonly variants = new Map<string, DhcpSubnet>();
  private readonly boot_: (q: BootQuery) => BootAnswer | null;
  private lastKey = '';
  private lastConfig: DhcpConfig | null = null;
  private parsed: { cfg: DhcpConfig; subnets: DhcpSubnet[]; key: string } | null = null;
  private applying: Promise<void> = Promise.resolve();
  private rescan: NodeJS.Timeout | null = null;
  private stopped = false;
  private probed = new Map<string, string | null>();
  private readonly log: Logger;
  private readonly raResponders = new Map<string, Ipv6RaResponder>();
  private raOffLogged = false;

  constructor(private readonly opts: DhcpServiceOptions) {
    this.log = opts.logger;
    this.db = openRackDb(join(opts.dataDir, 'rack.db'), { durability: opts.durability ?? 'normal' });
    this.leases = new LeaseDb(this.db);
    this.boot_ =
      opts.boot ??
      defaultBootAnswer({
        httpPort: opts.httpPort,
        ...(opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress } : {}),
      });
  }

  // --- DhcpPolicy -------------------------------------------------------------------------------

  subnetFor(q: SubnetQuery): DhcpSubnet | null {
    const local = this.served.filter((s) => s.ifname === q.ifname);
    if (local.length === 0) return null;
    if (q.giaddr === 0) return local[0]!.subnet;
    // Relayed: the subnet containing giaddr (RFC 2131 §4.3.1), answered with our address on the
    // interface the relay reached.
    const s = this.subnets.find((x) => cidrContains(x.cidr, q.giaddr));
    if (!s) return null;
    const key = `${s.id}@${q.ifname}`;
    let v = this.variants.get(key);
    if (!v || v.cidr !== s.cidr || v.ranges !== s.ranges) {
      v = { ...s, serverAddress: local[0]!.address };
      this.variants.set(key, v);
    }
    return v;
  }

  boot(q: BootQuery): BootAnswer | null {
    return this.boot_(q);
  }

  onLease(l: Lease): void {
    this.opts.onLease?.(l);
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  /**
   * Apply a configuration (the first one, or a change). Idempotent for an unchanged config and
   * unchanged interfaces; calls run one at a time (a probe takes seconds).
   */
  apply(cfg: DhcpConfig): Promise<void> {
    this.lastConfig = cfg;
    if (!this.rescan && !this.stopped) {
      this.rescan = setInterval(() => {
        if (this.lastConfig && !this.stopped) {
          this.apply(this.lastConfig).catch((err) => this.log.warn({ err }, 'dhcp: interface rescan failed'));
        }
      }, this.opts.rescanMs ?? 2000);
      this.rescan.unref();
    }
    const run = this.applying.then(() => (this.stopped ? undefined : this.applyNow(cfg)));
    this.applying = run.catch(() => {});
    return run;
  }

  private async applyNow(cfg: DhcpConfig): Promise<void> {
    // The rescan re-applies the same config object every 2 s: parse and fingerprint it once, so a
    // rescan costs only the interface listing (a config can hold tens of thousands of reservations).
    if (this.parsed?.cfg !== cfg) this.parsed = { cfg, subnets: this.parse(cfg), key: JSON.stringify(cfg) };
    const { subnets } = this.parsed;
    const candidates = this.match(subnets);
    const key = `${this.parsed.key}|${candidates.map((c) => `${c.ifname}/${c.address}/${c.subnet.id}`).join(',')}`;
    if (key === this.lastKey) return;
    this.lastKey = key;

    const served: Served[] = [];
    for (const c of candidates) {
      if (c.subnet.mode === 'managed' && (this.opts.probeTimeoutMs ?? 2000) > 0) {
        const pk = `${c.ifname}/${formatCidr(c.subnet.cidr)}`;
        if (!this.probed.has(pk) && !this.isServing(c.ifname)) {
          this.probed.set(pk, await this.probe(c));
        }
        const other = this.probed.get(pk);
        if (other) {
          this.event({
            type: 'dhcp.rogue_server',
            level: 'error',
            text: `Another DHCP server (${other}) answers on ${c.ifname} in ${formatCidr(c.subnet.cidr)}; kiln will not serve this subnet there. Remove it, or put the subnet in proxy mode.`,
            data: { subnet_id: c.subnet.id, ifname: c.ifname, server: other },
          });
          continue;
        }
      }
      served.push(c);
    }
    let ifnames = [...new Set(served.map((s) => s.ifname))];
    if (ifnames.length > 1 && !this.opts.native) {
      this.event({
        type: 'dhcp.interface_unserved',
        level: 'error',
        text: `SO_BINDTODEVICE (native addon) is unavailable, so DHCP serves only ${ifnames[0]}; not served: ${ifnames.slice(1).join(', ')}`,
        data: { served: ifnames[0], unserved: ifnames.slice(1) },
      });
      ifnames = ifnames.slice(0, 1);
    }
    this.subnets = subnets;
    this.served = served.filter((s) => ifnames.includes(s.ifname));
    this.variants.clear();
    const running = this.server ? [...new Set(this.server.ports().map((p) => p.ifname))].sort() : [];
    if (JSON.stringify(running) !== JSON.stringify([...ifnames].sort())) {
      await this.server?.stop();
      this.server = null;
      if (ifnames.length > 0) {
        const server = new DhcpServer({
          interfaces: ifnames,
          port: this.opts.port,
          proxyPort: this.opts.proxyPort,
          policy: this,
          leases: this.leases,
          logger: this.log,
          native: this.opts.native ?? null,
        });
        await server.start();
        this.server = server;
      }
    }
    this.syncRa(ifnames);
    this.event({
      type: 'dhcp.serving',
      level: 'info',
      text: ifnames.length > 0 ? `DHCP serving on ${ifnames.join(', ')}` : 'DHCP serving nothing',
      data: {
        interfaces: this.served.map((s) => ({
          ifname: s.ifname,
          subnet_id: s.subnet.id,
          mode: s.subnet.mode,
        })),
      },
    });
  }

  /** One RA responder per served interface (rack.dhcp.ipv6_ra); none anywhere else. */
  private syncRa(ifnames: readonly string[]): void {
    for (const [ifname, r] of this.raResponders) {
      // A responder whose socket failed stopped itself; the next apply gets a fresh one.
      if (!ifnames.includes(ifname) || !r.running) {
        r.stop();
        this.raResponders.delete(ifname);
      }
    }
    if (!this.opts.ipv6Ra || ifnames.length === 0) return;
    const native = this.raNative();
    if (typeof native === 'string') {
      if (!this.raOffLogged) {
        this.raOffLogged = true;
        this.log.warn(
          { reason: native },
          `IPv6 router advertisements are off (${native}): iPXE will wait ~16 s for IPv6 autoconfiguration`,
        );
      }
      return;
    }
    for (const ifname of ifnames) {
      if (this.raResponders.has(ifname)) continue;
      const r = new Ipv6RaResponder({ ifname, native, logger: this.log });
      try {
        r.start();
        this.raResponders.set(ifname, r);
      } catch (err) {
        // EPERM without CAP_NET_RAW, or the interface vanished: DHCP goes on, boots are just slower.
        this.log.warn(
          { ifname, err: describeError(err) },
          'IPv6 RA responder not started: iPXE will wait ~16 s for IPv6 autoconfiguration here',
        );
      }
    }
  }

  /** The addon's raw ICMPv6 functions, or why there are none. */
  private raNative(): Ipv6RaNative | string {
    const n = this.opts.native;
    if (!n) return 'the native addon is unavailable';
    const { icmp6Status, openIcmp6Socket } = n;
    if (!icmp6Status || !openIcmp6Socket) return 'the native addon has no raw ICMPv6 sockets';
    const status = icmp6Status();
    if (!status.available) return status.reason ?? 'raw ICMPv6 sockets unavailable';
    return { icmp6Status, openIcmp6Socket };
  }

  /** Interfaces where router solicitations are being answered (for logs and tests). */
  raInterfaces(): string[] {
    return [...this.raResponders.keys()].filter((i) => this.raResponders.get(i)!.running);
  }

  private isServing(ifname: string): boolean {
    return this.server?.ports().some((p) => p.ifname === ifname) ?? false;
  }

  private async probe(c: Served): Promise<string | null> {
    try {
      return await probeDhcpServer({
        ifname: c.ifname,
        timeoutMs: this.opts.probeTimeoutMs ?? 2000,
        ownAddresses: this.served.map((s) => s.address).concat(c.address),
        native: this.opts.native ?? null,
        directedBroadcast: intToIp(broadcastOf(c.subnet.cidr)),
      });
    } catch (err) {
      // Port 68 taken (a DHCP client runs here): we cannot look, so we do not serve blind.
      this.log.warn({ ifname: c.ifname, err: describeError(err) }, 'DHCP probe failed');
      return `unknown (probe failed: ${describeError(err)})`;
    }
  }

  private parse(cfg: DhcpConfig): DhcpSubnet[] {
    const out: DhcpSubnet[] = [];
    for (const s of cfg.subnets) {
      try {
        const cidr = parseCidr(s.cidr);
        const ranges = s.dynamic_ranges.map((r) => ({ start: ipToInt(r.start), end: ipToInt(r.end) }));
        const reservations = s.reservations.map((r) => ({
          mac: parseMac(r.mac) as Mac,
          ip: ipToInt(r.ip),
          ...(r.hostname ? { hostname: r.hostname } : {}),
        }));
        out.push({
          id: String(s.id),
          cidr,
          mode: s.proxy_mode ? 'proxy' : 'managed',
          serverAddress: 0,
          routers: s.gateway ? [ipToInt(s.gateway)] : [],
          dnsServers: s.dns_servers.map(ipToInt),
          ...(s.domain ? { domain: s.domain } : {}),
          leaseSeconds: s.lease_seconds,
          ranges: ranges.filter(
            (r) => r.start <= r.end && cidrContains(cidr, r.start) && cidrContains(cidr, r.end),
          ),
          reservations: reservations.filter((r) => cidrContains(cidr, r.ip)),
        });
      } catch (err) {
        this.event({
          type: 'dhcp.bad_subnet',
          level: 'error',
          text: `subnet ${s.id} (${s.cidr}) not served: ${describeError(err)}`,
          data: { subnet_id: s.id },
        });
      }
    }
    return out;
  }

  /** Interfaces with an IPv4 address inside a configured subnet (and allowed by rack.dhcp.interfaces). */
  private match(subnets: DhcpSubnet[]): Served[] {
    const out: Served[] = [];
    const ifs = (this.opts.listInterfaces ?? networkInterfaces)();
    for (const [ifname, addrs] of Object.entries(ifs)) {
      if (this.opts.allowedInterfaces.length > 0 && !this.opts.allowedInterfaces.includes(ifname)) continue;
      for (const a of addrs ?? []) {
        if (a.family !== 'IPv4' || a.internal) continue;
        const ip = ipToInt(a.address);
        const s = subnets.find((x) => cidrContains(x.cidr, ip));
        if (s && !out.some((o) => o.ifname === ifname && o.subnet.id === s.id)) {
          out.push({ ifname, address: ip, subnet: { ...s, serverAddress: ip } });
        }
      }
    }
    return out;
  }

  private event(e: DhcpEvent): void {
    const level = e.level === 'warning' ? 'warn' : e.level;
    this.log[level]({ event: e.type, ...e.data }, e.text);
    this.opts.onEvent?.(e);
  }

  /** Lease changes the region has not acknowledged, shaped for UpdateLeases. */
  pendingLeaseReports(limit = 1000): Array<LeaseRecord> {
    return this.leases.unreported(limit).map((l) => ({
      subnet_id: Number(l.subnetId),
      ip: intToIp(l.ip),
      mac: l.mac,
      state: l.state,
      expires_at: l.expiresAt,
      hostname: l.hostname,
      updated_at: l.updatedAt,
    }));
  }

  /** After UpdateLeases succeeded for these records. */
  leasesReported(records: ReadonlyArray<Pick<LeaseRecord, 'ip' | 'updated_at'>>): void {
    this.leases.markReported(records.map((r) => ({ ip: ipToInt(r.ip), updatedAt: r.updated_at })));
  }

  /** Port numbers actually bound, per interface (for logs and tests). */
  ports(): Array<{ ifname: string; port: number }> {
    return this.server?.ports() ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.rescan) clearInterval(this.rescan);
    this.rescan = null;
    await this.applying;
    this.syncRa([]);
    await this.server?.stop();
    this.server = null;
    this.leases.flush();
    this.db.close();
  }
}
