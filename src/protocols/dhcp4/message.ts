import { DecodeError } from '../../lib/errors.js';
import { Opt, optIp } from './options.js';
import { BOOTREQUEST, type DhcpPacket, FLAG_BROADCAST } from './packet.js';

/** Option 53 values (RFC 2132 §9.6). */
export const MsgType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;
export type MsgTypeValue = (typeof MsgType)[keyof typeof MsgType];

const NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};

export function msgTypeName(t: number): string {
  return NAMES[t] ?? `type-${t}`;
}

export function messageType(p: DhcpPacket): number | undefined {
  return p.options.get(Opt.MessageType)?.[0];
}

/**
 * A client message the server may act on, checked against the rules of RFC 2131 §4.4.1 (table 5):
 * requests only, a known client-to-server type, a usable hardware address. Returns the type or
 * throws DecodeError naming what is wrong.
 */
export function clientMessageType(p: DhcpPacket): MsgTypeValue {
  if (p.op !== BOOTREQUEST) throw new DecodeError('not a BOOTREQUEST');
  const t = messageType(p);
  if (t === undefined) throw new DecodeError('no message type (BOOTP is not served)');
  if (
    t !== MsgType.Discover &&
    t !== MsgType.Request &&
    t !== MsgType.Decline &&
    t !== MsgType.Release &&
    t !== MsgType.Inform
  ) {
    throw new DecodeError(`${msgTypeName(t)} is not a client message`);
  }
  if (p.hlen === 0 && !p.options.has(Opt.ClientId)) throw new DecodeError('no client identity');
  return t as MsgTypeValue;
}

/** The state a REQUEST comes from, told apart by RFC 2131 §4.3.2. */
export type RequestState = 'selecting' | 'init-reboot' | 'renewing' | 'rebinding';

/**
 * RFC 2131 §4.3.2: SELECTING carries server identifier and requested address, ciaddr zero;
 * INIT-REBOOT carries requested address, no server identifier, ciaddr zero; RENEWING (unicast) and
 * REBINDING (broadcast) carry ciaddr and neither option. `viaBroadcast` is unknown to a socket that
 * cannot tell, so the broadcast flag and the absence of a relay are the hint.
 */
export function requestState(p: DhcpPacket): RequestState {
  const sid = optIp(p.options, Opt.ServerId);
  const requested = optIp(p.options, Opt.RequestedAddress);
  if (sid !== undefined) {
    if (requested === undefined && p.ciaddr === 0) {
      throw new DecodeError('REQUEST in SELECTING state without a requested address');
    }
    return 'selecting';
  }
  if (p.ciaddr === 0) {
    if (requested === undefined) throw new DecodeError('REQUEST without ciaddr or requested address');
    return 'init-reboot';
  }
  return (p.flags & FLAG_BROADCAST) !== 0 ? 'rebinding' : 'renewing';
}

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
export const BROADCAST = 0xffffffff;

export interface ReplyDestination {
  address: number;
  port: number;
  broadcast: boolean;
}

/**
 * Where a reply goes, RFC 2131 §4.1 ("If the 'giaddr' field ... is nonzero"), in order:
 *  - relayed (giaddr set): to the relay's server port; the relay delivers it.
 *  - ciaddr set (RENEWING, REBINDING, INFORM): unicast to ciaddr — but never a NAK.
 *  - NAK, or broadcast bit set: broadcast to 255.255.255.255.
 *  - otherwise the RFC wants unicast to yiaddr and chaddr, which needs an ARP entry the client has
 *    not answered for yet. Node cannot write the ARP table, so kiln broadcasts; every client accepts a
 *    broadcast reply (§4.1 allows it when unicast is impossible).
 */
export function replyDestination(req: DhcpPacket, replyType: number): ReplyDestination {
  if (req.giaddr !== 0) return { address: req.giaddr, port: SERVER_PORT, broadcast: false };
  if (replyType !== MsgType.Nak && req.ciaddr !== 0) {
    return { address: req.ciaddr, port: CLIENT_PORT, broadcast: false };
  }
  return { address: BROADCAST, port: CLIENT_PORT, broadcast: true };
}
