import { DecodeError } from '../lib/errors.js';
import { intToIp } from '../lib/ipv4.js';
import type { Logger } from '../lib/logger.js';
import { type Mac, macFromBytes } from '../lib/mac.js';
import {
  clientMessageType,
  MsgType,
  type ReplyDestination,
  replyDestination,
  requestState,
} from '../protocols/dhcp4/message.js';
import { ipBytes, ipsBytes, Opt, type Options, optIp, optU16, u32Bytes } from '../protocols/dhcp4/options.js';
import { BOOTREPLY, type DhcpPacket, FLAG_BROADCAST, MAX_DHCP_SIZE } from '../protocols/dhcp4/packet.js';
import { ipxeNoProxyDhcp, pxeVendorOptions } from '../protocols/pxe/boot-options.js';
import { classifyBootClient } from '../protocols/pxe/classify.js';
import { Allocator } from './dhcp-allocator.js';
import type { BootAnswer, DhcpPolicy, DhcpSubnet, Lease, LeaseStore } from './dhcp-policy.js';

/** How long a declined address stays out of the pool (RFC 2131 §4.3.3 leaves it to the server; Kea uses a day). */
export const DECLINE_QUARANTINE_MS = 24 * 3600 * 1000;

export interface Inbound {
  packet: DhcpPacket;
  /** The interface (socket) it came in on. */
  ifname: string;
  /** Local port: 67 for DHCP, 4011 for PXE boot-server requests. */
  localPort: number;
  source: { address: number; port: number };
}

export interface Outbound {
  packet: DhcpPacket;
  to: ReplyDestination;
  /** The largest datagram the client accepts (its option 57), for the encoder. */
  maxSize: number;
  /** Sent only after the lease store's next flush (an ACK that grants a lease). */
  afterFlush: boolean;
}

/**
 * The RFC 2131 server state machine: one request in, at most one reply out. Subnets, boot answers
 * and durability come from the policy and the lease store; this file owns only the protocol rules.
 */
export class DhcpResponder {
  private readonly alloc: Allocator;

  constructor(
    private readonly policy: DhcpPolicy,
    private readonly store: LeaseStore,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.alloc = new Allocator(store);
  }

  /** Throws DecodeError for a request that breaks the protocol; returns null when silence is right. */
  handle(inb: Inbound): Outbound | null {
    const p = inb.packet;
    const type = clientMessageType(p);
    if (p.htype !== 1 || p.hlen !== 6)
      throw new DecodeError(`hardware type ${p.htype}/${p.hlen} is not Ethernet`);
    const mac = macFromBytes(p.chaddr);
    const subnet = this.policy.subnetFor({ ifname: inb.ifname, giaddr: p.giaddr });
    if (!subnet) {
      this.log.debug(
        { mac, ifname: inb.ifname, giaddr: intToIp(p.giaddr) },
        'dhcp: no served subnet, silent',
      );
      return null;
    }
    if (inb.localPort !== 67 || subnet.mode === 'proxy') return this.proxy(inb, type, mac, subnet);
    const now = this.clock();
    switch (type) {
      case MsgType.Discover:
        return this.discover(p, mac, subnet, now);
      case MsgType.Request:
        return this.request(p, mac, subnet, now);
      case MsgType.Decline:
        return this.decline(p, mac, subnet, now);
      case MsgType.Release:
        return this.release(p, mac, subnet, now);
      case MsgType.Inform:
        return this.inform(p, mac, subnet);
    }
    return null;
  }

  private discover(p: DhcpPacket, mac: Mac, s: DhcpSubnet, now: number): Outbound | null {
    const ip = this.alloc.choose(s, mac, optIp(p.options, Opt.RequestedAddress), now);
    if (ip === null) {
      this.log.warn({ mac, subnet: s.id }, 'dhcp: no free address in the dynamic ranges');
      return null;
    }
    this.alloc.hold(mac, ip, now);
    return this.reply(p, MsgType.Offer, s, mac, ip, false);
  }

  private request(p: DhcpPacket, mac: Mac, s: DhcpSubnet, now: number): Outbound | null {
    const state = requestState(p);
    const requested = optIp(p.options, Opt.RequestedAddress);
    if (state === 'selecting') {
      // RFC 2131 §4.3.2: a REQUEST naming another server means our offer was declined; forget it.
      if (optIp(p.options, Opt.ServerId) !== s.serverAddress) {
        this.alloc.drop(mac);
        return null;
      }
      const ip = requested ?? p.ciaddr;
      if (!this.alloc.usable(s, mac, ip, now)) return this.nak(p, s, 'requested address is not available');
      return this.grant(p, mac, s, ip, now);
    }
    if (state === 'init-reboot') {
      const ip = requested!;
      // §4.3.2 INIT-REBOOT: NAK an address on the wrong network or not the client's; stay silent when
      // we have no record of the client (another server may).
      if ((ip & s.cidr.mask) >>> 0 !== s.cidr.network) return this.nak(p, s, 'wrong network');
      const known =
        this.alloc.reservationFor(s, mac) !== undefined ||
        this.store.byMac(mac).some((l) => l.subnetId === s.id && l.state !== 'declined');
      if (!known) return null;
      if (!this.alloc.usable(s, mac, ip, now) || !this.owns(s, mac, ip)) {
        return this.nak(p, s, 'not this client\u2019s address');
      }
      return this.grant(p, mac, s, ip, now);
    }
    // RENEWING / REBINDING: extend the lease on ciaddr. Once the client holds an address it is ours to
    // check; a lease lost with a wiped database is granted again when the address is free.
    const ip = p.ciaddr;
    if (!this.alloc.usable(s, mac, ip, now)) {
      return state === 'renewing' ? this.nak(p, s, 'address not available for renewal') : null;
    }
    return this.grant(p, mac, s, ip, now);
  }

  private owns(s: DhcpSubnet, mac: Mac, ip: number): boolean {
    const res = this.alloc.reservationFor(s, mac);
    if (res) return res.ip === ip;
    const lease = this.store.byIp(ip);
    return lease !== undefined && lease.mac === mac && lease.state !== 'declined';
  }

  private grant(p: DhcpPacket, mac: Mac, s: DhcpSubnet, ip: number, now: number): Outbound | null {
    // A client moving address frees the old one at once.
    for (const old of this.store.byMac(mac)) {
      if (old.ip !== ip && old.state === 'active' && old.subnetId === s.id) {
        this.store.put({ ...old, state: 'released', expiresAt: now });
      }
    }
    const lease: Lease = {
      ip,
      mac,
      clientId: p.options.get(Opt.ClientId)?.toString('hex') ?? null,
      subnetId: s.id,
      expiresAt: now + s.leaseSeconds * 1000,
      hostname: this.alloc.reservationFor(s, mac)?.hostname ?? hostnameOf(p.options),
      state: 'active',
    };
    this.store.put(lease);
    this.alloc.drop(mac);
    this.policy.onLease?.(lease);
    return this.reply(p, MsgType.Ack, s, mac, ip, true);
  }

  private nak(p: DhcpPacket, s: DhcpSubnet, why: string): Outbound {
    const o: Options = new Map();
    o.set(Opt.MessageType, Buffer.from([MsgType.Nak]));
    o.set(Opt.ServerId, ipBytes(s.serverAddress));
    o.set(Opt.Message, Buffer.from(why, 'latin1'));
    const relay = p.options.get(Opt.RelayAgentInfo);
    if (relay) o.set(Opt.RelayAgentInfo, relay);
    // RFC 2131 §4.1: a NAK through a relay asks it to broadcast to the client.
    const packet = this.base(p, 0, p.giaddr !== 0 ? p.flags | FLAG_BROADCAST : p.flags, o);
    this.log.debug({ mac: macFromBytes(p.chaddr), why }, 'dhcp: NAK');
    return { packet, to: replyDestination(p, MsgType.Nak), maxSize: maxSizeOf(p), afterFlush: false };
  }

  private decline(p: DhcpPacket, mac: Mac, s: DhcpSubnet, now: number): null {
    if (optIp(p.options, Opt.ServerId) !== s.serverAddress) return null;
    const ip = optIp(p.options, Opt.RequestedAddress);
    if (ip === undefined) throw new DecodeError('DECLINE without a requested address');
    // §4.3.3: the client found the address in use; keep it out of the pool for a while.
    if (this.owns(s, mac, ip) || this.alloc.inRange(s, ip)) {
      this.store.put({
        ip,
        mac,
        clientId: null,
        subnetId: s.id,
        expiresAt: now + DECLINE_QUARANTINE_MS,
        hostname: null,
        state: 'declined',
      });
      this.log.warn({ mac, ip: intToIp(ip), subnet: s.id }, 'dhcp: address declined, quarantined');
    }
    this.alloc.drop(mac);
    return null;
  }

  private release(p: DhcpPacket, mac: Mac, s: DhcpSubnet, now: number): null {
    const lease = this.store.byIp(p.ciaddr);
    // §4.3.4: only the holder may release; the server sends nothing back.
    if (lease && lease.mac === mac && lease.state === 'active' && lease.subnetId === s.id) {
      this.store.put({ ...lease, state: 'released', expiresAt: now });
    }
    return null;
  }

  private inform(p: DhcpPacket, mac: Mac, s: DhcpSubnet): Outbound | null {
    // §4.3.5: configuration only — no yiaddr, no lease time — unicast to ciaddr.
    return this.reply(p, MsgType.Ack, s, mac, 0, false, true);
  }

  /** proxyDHCP (PXE spec 2.1 §2.2): boot information only, never an address. */
  private proxy(inb: Inbound, type: number, mac: Mac, s: DhcpSubnet): Outbound | null {
    const p = inb.packet;
    const client = classifyBootClient(p.options);
    if (client.kind === 'none') return null;
    const onBootServerPort = inb.localPort !== 67;
    if (!onBootServerPort && type !== MsgType.Discover) return null;
    if (onBootServerPort && type !== MsgType.Request && type !== MsgType.Inform) return null;
    const answer = this.policy.boot({ mac, client, subnet: s, clientAddress: p.ciaddr });
    if (!answer) return null;
    const o: Options = new Map();
    o.set(Opt.MessageType, Buffer.from([onBootServerPort ? MsgType.Ack : MsgType.Offer]));
    o.set(Opt.ServerId, ipBytes(s.serverAddress));
    o.set(Opt.VendorClass, Buffer.from(answer.vendorClass ?? 'PXEClient', 'latin1'));
    if (client.kind === 'pxe') o.set(Opt.VendorSpecific, pxeVendorOptions());
    if (client.guid) o.set(Opt.ClientGuid, client.guid);
    const packet = this.base(p, 0, p.flags, o);
    this.setBoot(packet, o, answer, s);
    const to: ReplyDestination = onBootServerPort
      ? { address: inb.source.address, port: inb.source.port, broadcast: false }
      : replyDestination(p, MsgType.Offer);
    return { packet, to, maxSize: maxSizeOf(p), afterFlush: false };
  }

  private reply(
    p: DhcpPacket,
    type: number,
    s: DhcpSubnet,
    mac: Mac,
    ip: number,
    afterFlush: boolean,
    inform = false,
  ): Outbound {
    const o: Options = new Map();
    o.set(Opt.MessageType, Buffer.from([type]));
    o.set(Opt.ServerId, ipBytes(s.serverAddress));
    if (!inform) {
      const t = s.leaseSeconds;
      o.set(Opt.LeaseTime, u32Bytes(t));
      // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
      o.set(Opt.RenewalTime, u32Bytes(Math.floor(t / 2)));
      o.set(Opt.RebindingTime, u32Bytes(Math.floor((t * 7) / 8)));
    }
    o.set(Opt.SubnetMask, ipBytes(s.cidr.mask));
    if (s.routers.length > 0) o.set(Opt.Router, ipsBytes(s.routers));
    if (s.dnsServers.length > 0) o.set(Opt.DomainServer, ipsBytes(s.dnsServers));
    if (s.domain) o.set(Opt.DomainName, Buffer.from(s.domain, 'latin1'));
    const hostname = this.alloc.reservationFor(s, mac)?.hostname;
    if (hostname) o.set(Opt.HostName, Buffer.from(hostname, 'latin1'));
    const client = classifyBootClient(p.options);
    if (client.guid) o.set(Opt.ClientGuid, client.guid);
    const packet = this.base(p, ip, p.flags, o);
    if (client.kind !== 'none') {
      const answer = this.policy.boot({ mac, client, subnet: s, clientAddress: ip });
      if (answer) this.setBoot(packet, o, answer, s);
    }
    // RFC 3046 §2.2: relay agent information goes back unchanged, last.
    const relay = p.options.get(Opt.RelayAgentInfo);
    if (relay) o.set(Opt.RelayAgentInfo, relay);
    return { packet, to: replyDestination(p, type), maxSize: maxSizeOf(p), afterFlush };
  }

  private setBoot(packet: DhcpPacket, o: Options, a: BootAnswer, s: DhcpSubnet): void {
    const next = a.nextServer ?? s.serverAddress;
    packet.siaddr = next;
    if (a.vendorClass) o.set(Opt.VendorClass, Buffer.from(a.vendorClass, 'latin1'));
    o.set(Opt.TftpServerName, Buffer.from(intToIp(next), 'latin1'));
    o.set(Opt.BootfileName, Buffer.from(a.bootfile, 'latin1'));
    // BIOS PXE ROMs read the header's file field; long URLs only fit in option 67.
    if (a.bootfile.length <= 127) packet.file = a.bootfile;
    if (a.ipxeNoProxyDhcp) o.set(Opt.Ipxe, ipxeNoProxyDhcp());
  }

  private base(p: DhcpPacket, yiaddr: number, flags: number, options: Options): DhcpPacket {
    return {
      op: BOOTREPLY,
      htype: p.htype,
      hlen: p.hlen,
      hops: 0,
      xid: p.xid,
      secs: 0,
      flags,
      ciaddr: p.ciaddr,
      yiaddr,
      siaddr: 0,
      giaddr: p.giaddr,
      chaddr: p.chaddr,
      sname: '',
      file: '',
      options,
    };
  }
}

/** Option 57 bounds our reply (minus 28 bytes of IP and UDP headers); RFC 2132 §9.10 sets 576 as its floor. */
function maxSizeOf(p: DhcpPacket): number {
  let mms: number | undefined;
  try {
    mms = optU16(p.options, Opt.MaxMessageSize);
  } catch {
    mms = undefined;
  }
  if (mms === undefined || mms < 576) return 576 - 28;
  return Math.min(MAX_DHCP_SIZE, mms - 28);
}

function hostnameOf(o: Options): string | null {
  const h = o.get(Opt.HostName);
  if (!h || h.length === 0) return null;
  const s = h.toString('latin1').replace(/\0+$/, '');
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(s) ? s : null;
}
