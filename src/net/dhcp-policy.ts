import type { Cidr } from '../lib/ipv4.js';
import type { Mac } from '../lib/mac.js';
import type { BootClient } from '../protocols/pxe/classify.js';

/**
 * What the DHCP server asks and what the rack answers (servers ask, policy answers). The server
 * knows RFC 2131; it never decides which networks it serves, which addresses are handed out or what
 * a machine boots.
 */

export interface DhcpRange {
  start: number;
  end: number;
}

export interface DhcpReservation {
  mac: Mac;
  ip: number;
  hostname?: string;
}

/** A subnet this rack serves, with every number already parsed. */
export interface DhcpSubnet {
  /** The region's subnet id; leases are recorded under it. */
  id: string;
  cidr: Cidr;
  /**
   * `managed`: kiln hands out addresses. `proxy`: another server owns the addresses; kiln only
   * answers PXE clients with boot information (proxyDHCP), never with an address.
   */
  mode: 'managed' | 'proxy';
  /** This rack's address inside the subnet: server identifier, next-server, boot URLs. */
  serverAddress: number;
  routers: number[];
  dnsServers: number[];
  domain?: string;
  leaseSeconds: number;
  ranges: DhcpRange[];
  reservations: DhcpReservation[];
}

export interface SubnetQuery {
  /** The interface the request came in on (the socket's device). */
  ifname: string;
  /** Relay address; 0 when the client is on the link. */
  giaddr: number;
}

export interface BootQuery {
  mac: Mac;
  client: BootClient;
  subnet: DhcpSubnet;
  /** The address the client will have (0 in proxy mode or before one is chosen). */
  clientAddress: number;
}

export interface BootAnswer {
  /** TFTP path (PXE firmware) or an http:// URL (UEFI HTTP boot, iPXE). */
  bootfile: string;
  /** siaddr and option 66; the subnet's server address when absent. */
  nextServer?: number;
  /** Option 60 to send back: `HTTPClient` for UEFI HTTP boot, `PXEClient` for proxyDHCP. */
  vendorClass?: string;
  /** Add option 175 with 176=1 so iPXE does not wait for proxyDHCP. */
  ipxeNoProxyDhcp?: boolean;
}

export interface DhcpPolicy {
  /** The subnet that serves a request, or null: not ours, stay silent. */
  subnetFor(q: SubnetQuery): DhcpSubnet | null;
  /** What this client boots, or null: give it an address but no boot information. */
  boot(q: BootQuery): BootAnswer | null;
  /** A MAC got an address (ACK); the rack reports unknown MACs to the region as discoveries. */
  onLease?(lease: Lease): void;
}

export type LeaseState = 'active' | 'released' | 'declined';

export interface Lease {
  ip: number;
  mac: Mac;
  /** Option 61 as hex, if the client sent one. */
  clientId: string | null;
  subnetId: string;
  /** Milliseconds since the epoch; for `declined`, the end of the quarantine. */
  expiresAt: number;
  hostname: string | null;
  state: LeaseState;
}

/**
 * Durable leases. Reads come from memory; writes are buffered and made durable together by
 * `flush()`, which the server calls once per event-loop turn before it sends the ACKs that depend on
 * them (group commit: one transaction per batch of clients, not per client).
 */
export interface LeaseStore {
  byIp(ip: number): Lease | undefined;
  byMac(mac: Mac): Lease[];
  put(lease: Lease): void;
  flush(): void;
}
