/**
 * The rack's IPv6 router-advertisement responder: on one interface, answers router solicitations
 * with an advertisement that says "not a router" (lifetime 0, no prefix, no flags; see
 * protocols/ndp/router-advertisement.ts). iPXE waits ~16 s for IPv6 autoconfiguration unless an RA
 * answers its solicitation (REFERENCE.md); this answer ends the wait and configures nothing.
 *
 * It only ever answers: no unsolicited periodic advertisements (RFC 4861 §6.2.4), since an
 * advertisement nobody asked for could only repeat what the answers already say.
 */
import { networkInterfaces } from 'node:os';
import { describeError, isKilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Icmp6Message, Icmp6SocketHandle, NativeStatus } from '../native/index.js';
import { encodeNullRouterAdvertisement } from '../protocols/ndp/router-advertisement.js';
import {
  checkSolicitationSource,
  decodeRouterSolicitation,
  ICMP6_ROUTER_SOLICITATION,
} from '../protocols/ndp/router-solicitation.js';

/** The part of src/native/index.ts this responder needs (injected, so the rack decides). */
export interface Ipv6RaNative {
  icmp6Status(): NativeStatus;
  openIcmp6Socket(opts: {
    ifname: string;
    passTypes: readonly number[];
    joinGroups?: readonly string[];
  }): Icmp6SocketHandle;
}

export interface Ipv6RaResponderOptions {
  ifname: string;
  native: Ipv6RaNative;
  logger: Logger;
  /** The interface's MAC for the source link-layer option; looked up with os.networkInterfaces(). */
  mac?: string | null;
  /**
   * RFC 4861 §6.2.6 / §10 MAX_RA_DELAY_TIME: answers wait a random 0..this many ms, so that several
   * routers answering one multicast solicitation do not collide. Default 500.
   */
  maxDelayMs?: number;
  /** §10 MIN_DELAY_BETWEEN_RAS: at most one multicast advertisement per this many ms. Default 3000. */
  minMulticastIntervalMs?: number;
  /**
   * Unicast answers waiting for their delay, at most. Beyond it (a flood of solicitations from many
   * sources) the responder answers with one rate-limited multicast instead. Default 256.
   */
  maxPendingUnicast?: number;
  clock?: () => number;
  random?: () => number;
}

export interface Ipv6RaStats {
  received: number;
  dropped: number;
  sentUnicast: number;
  sentMulticast: number;
  sendErrors: number;
}

const ALL_NODES = 'ff02::1';
const ALL_ROUTERS = 'ff02::2';
/** §6.1.1: a solicitation that arrived with any other IP hop limit was forwarded, so it is forged. */
const ND_HOP_LIMIT = 255;

function isLinkLocal(addr: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(addr);
}

export class Ipv6RaResponder {
  readonly ifname: string;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly maxDelayMs: number;
  private readonly minMulticastIntervalMs: number;
  private readonly maxPendingUnicast: number;
  private socket: Icmp6SocketHandle | null = null;
  private ra: Buffer = Buffer.alloc(0);
  private ownAddresses = new Set<string>();
  private ownAddressesAt = Number.NEGATIVE_INFINITY;
  private readonly pendingUnicast = new Map<string, NodeJS.Timeout>();
  private pendingMulticast: NodeJS.Timeout | null = null;
  private lastMulticastAt = Number.NEGATIVE_INFINITY;
  private readonly stats_: Ipv6RaStats = {
    received: 0,
    dropped: 0,
    sentUnicast: 0,
    sentMulticast: 0,
    sendErrors: 0,
  };

  constructor(private readonly opts: Ipv6RaResponderOptions) {
    this.ifname = opts.ifname;
    this.log = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.maxDelayMs = opts.maxDelayMs ?? 500;
    this.minMulticastIntervalMs = opts.minMulticastIntervalMs ?? 3000;
    this.maxPendingUnicast = opts.maxPendingUnicast ?? 256;
  }

  /**
   * Opens the socket and starts answering. Throws (KILN_ERR_NATIVE_UNAVAILABLE, or a Node-shaped
   * errno error such as EPERM without CAP_NET_RAW, ENODEV for a missing interface) when it cannot.
   */
  start(): void {
    if (this.socket) return;
    const entries = networkInterfaces()[this.ifname] ?? [];
    const mac = this.opts.mac === undefined ? entries[0]?.mac : this.opts.mac;
    const macBytes =
      mac && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac) && mac !== '00:00:00:00:00:00'
        ? Buffer.from(mac.replace(/:/g, ''), 'hex')
        : undefined;
    this.ra = encodeNullRouterAdvertisement(macBytes ? { sourceLinkLayer: macBytes } : {});
    this.refreshOwnAddresses();
    const socket = this.opts.native.openIcmp6Socket({
      ifname: this.ifname,
      passTypes: [ICMP6_ROUTER_SOLICITATION],
      joinGroups: [ALL_ROUTERS],
    });
    this.socket = socket;
    socket.start(
      (m) => this.onMessage(m),
      (err) => {
        // The socket is unusable (the interface went away, say): say so once and stop answering.
        this.log.warn({ ifname: this.ifname, err: describeError(err) }, 'IPv6 RA responder stopped');
        this.stop();
      },
    );
    this.log.debug({ ifname: this.ifname, mac: macBytes ? mac : null }, 'IPv6 RA responder started');
  }

  stop(): void {
    for (const t of this.pendingUnicast.values()) clearTimeout(t);
    this.pendingUnicast.clear();
    if (this.pendingMulticast) clearTimeout(this.pendingMulticast);
    this.pendingMulticast = null;
    if (this.socket) {
      this.socket.close();
      this.socket = null;
      this.log.debug({ ifname: this.ifname }, 'IPv6 RA responder stopped');
    }
  }

  get running(): boolean {
    return this.socket !== null;
  }

  stats(): Ipv6RaStats {
    return { ...this.stats_ };
  }

  private refreshOwnAddresses(): void {
    this.ownAddressesAt = this.clock();
    const entries = networkInterfaces()[this.ifname] ?? [];
    this.ownAddresses = new Set(entries.filter((e) => e.family === 'IPv6').map((e) => e.address));
  }

  /** Why a received message is not a solicitation to answer (RFC 4861 §6.1.1), or null. */
  private invalid(m: Icmp6Message): string | null {
    if (m.truncated) return 'longer than the read buffer';
    if (m.hopLimit >= 0 && m.hopLimit !== ND_HOP_LIMIT) return `IP hop limit ${m.hopLimit}`;
    try {
      checkSolicitationSource(decodeRouterSolicitation(m.data), m.from === '::');
    } catch (err) {
      if (isKilnError(err, 'KILN_ERR_DECODE')) return err.message;
      throw err;
    }
    // With the socket in ff02::2, this host's own solicitations loop back to it: not a client.
    // Addresses change (DAD ends, an operator adds one): look again, at most once a second.
    if (this.clock() - this.ownAddressesAt > 1000) this.refreshOwnAddresses();
    if (this.ownAddresses.has(m.from)) return 'sent by this host';
    return null;
  }

  private onMessage(m: Icmp6Message): void {
    this.stats_.received++;
    const reason = this.invalid(m);
    if (reason !== null) {
      this.stats_.dropped++;
      this.log.debug({ ifname: this.ifname, from: m.from, reason }, 'router solicitation dropped');
      return;
    }
    const unspecified = m.from === '::';
    this.log.debug({ ifname: this.ifname, from: m.from }, 'router solicitation');
    // §6.2.6: answer unicast to a solicitor that has an address (the usual case: iPXE and Linux
    // solicit from their link-local address), else multicast to all nodes, rate-limited. Only a
    // link-local source is answered unicast: any other is reachable only through routing we do
    // not control, and one multicast answers it just as well.
    if (!unspecified && isLinkLocal(m.from) && this.pendingUnicast.size < this.maxPendingUnicast) {
      this.scheduleUnicast(m.from, m.scopeId);
    } else {
      this.scheduleMulticast();
    }
  }

  private delay(): number {
    return Math.floor(this.random() * this.maxDelayMs);
  }

  private scheduleUnicast(to: string, scopeId: number): void {
    // A retransmitted solicitation before our answer left: the one answer serves both (§6.2.6).
    if (this.pendingUnicast.has(to)) return;
    const t = setTimeout(() => {
      this.pendingUnicast.delete(to);
      if (this.send(to, scopeId)) this.stats_.sentUnicast++;
    }, this.delay());
    this.pendingUnicast.set(to, t);
  }

  private scheduleMulticast(): void {
    if (this.pendingMulticast) return;
    const now = this.clock();
    const at = Math.max(now + this.delay(), this.lastMulticastAt + this.minMulticastIntervalMs);
    this.pendingMulticast = setTimeout(
      () => {
        this.pendingMulticast = null;
        this.lastMulticastAt = this.clock();
        if (this.send(ALL_NODES, this.socket?.ifindex ?? 0)) this.stats_.sentMulticast++;
      },
      Math.max(0, at - now),
    );
  }

  private send(to: string, scopeId: number): boolean {
    if (!this.socket) return false;
    try {
      this.socket.send(this.ra, to, scopeId);
      this.log.debug({ ifname: this.ifname, to }, 'router advertisement sent (lifetime 0)');
      return true;
    } catch (err) {
      // EADDRNOTAVAIL while the interface's link-local address is still tentative (DAD), or a
      // neighbour that vanished: the host will solicit again.
      this.stats_.sendErrors++;
      this.log.debug({ ifname: this.ifname, to, err: describeError(err) }, 'router advertisement not sent');
      return false;
    }
  }
}
