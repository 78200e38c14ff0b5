/**
 * Router Advertisement (RFC 4861 §4.2). kiln sends only one kind: the "I am here, but I am not your
 * router" answer that ends a booting host's wait for IPv6 autoconfiguration (iPXE waits ~16 s
 * without one; REFERENCE.md) and changes nothing else: router lifetime 0 (not a default router,
 * §6.3.4), M and O clear (no DHCPv6), Cur Hop Limit, Reachable Time and Retrans Timer 0 (§4.2:
 * "unspecified", hosts keep their own), and no prefix information (no address, no on-link route).
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Reachable Time                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Retrans Timer                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   Options ...
 * +-+-+-+-+-+-+-+-+-+-+-+-+-
 *   Type 134, Code 0.
 */
import { ByteWriter } from '../../lib/bytes.js';
import {
  linkLayerOption,
  type NdpOption,
  NdpOptionType,
  readNdpHeader,
  readNdpOptions,
  writeNdpOptions,
} from './options.js';

export const ICMP6_ROUTER_ADVERTISEMENT = 134;
const FIXED = 16;

export interface RouterAdvertisement {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds; 0 = not a default router. */
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
  sourceLinkLayer?: Buffer;
  options: NdpOption[];
}

/**
 * The advertisement kiln sends: lifetime 0, no flags, no prefix, all timers unspecified, and the
 * interface's link-layer address when known (§4.2: "MAY be omitted to facilitate in-bound load
 * balancing"; including it spares the host a neighbour solicitation before it can answer us).
 * Checksum 0: the kernel computes it for raw ICMPv6 sockets.
 */
export function encodeNullRouterAdvertisement(opts: { sourceLinkLayer?: Uint8Array } = {}): Buffer {
  const w = new ByteWriter(24);
  w.u8(ICMP6_ROUTER_ADVERTISEMENT).u8(0).u16(0); // type, code, checksum
  w.u8(0).u8(0).u16(0); // cur hop limit, M/O/reserved, router lifetime
  w.u32(0).u32(0); // reachable time, retrans timer
  if (opts.sourceLinkLayer) {
    writeNdpOptions(w, [linkLayerOption(NdpOptionType.SOURCE_LINK_LAYER_ADDRESS, opts.sourceLinkLayer)]);
  }
  return w.finish();
}

/** Decodes an RA (§6.1.2 checks that need only its bytes). Tests read kiln's own answers with it. */
export function decodeRouterAdvertisement(buf: Uint8Array): RouterAdvertisement {
  const r = readNdpHeader(buf, ICMP6_ROUTER_ADVERTISEMENT, 'router advertisement', FIXED);
  r.u16('checksum');
  const curHopLimit = r.u8('cur hop limit');
  const flags = r.u8('flags');
  const routerLifetime = r.u16('router lifetime');
  const reachableTime = r.u32('reachable time');
  const retransTimer = r.u32('retrans timer');
  return {
    curHopLimit,
    managed: (flags & 0x80) !== 0,
    other: (flags & 0x40) !== 0,
    routerLifetime,
    reachableTime,
    retransTimer,
    ...readNdpOptions(buf, FIXED),
  };
}
