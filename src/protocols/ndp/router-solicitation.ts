/**
 * Router Solicitation (RFC 4861 §4.1): what a booting host (iPXE, a kernel) multicasts to ff02::2
 * to ask routers to advertise now. Pure functions on the ICMPv6 message bytes (no IPv6 header: a
 * raw ICMPv6 socket delivers from the Type field on).
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                            Reserved                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   Options ...
 * +-+-+-+-+-+-+-+-+-+-+-+-+-
 *   Type 133, Code 0; the only option defined is Source Link-Layer Address.
 */
import { ByteWriter } from '../../lib/bytes.js';
import { DecodeError } from '../../lib/errors.js';
import {
  linkLayerOption,
  type NdpOption,
  NdpOptionType,
  readNdpHeader,
  readNdpOptions,
  writeNdpOptions,
} from './options.js';

export const ICMP6_ROUTER_SOLICITATION = 133;
const FIXED = 8;

export interface RouterSolicitation {
  /** The solicitor's link-layer address (option 1), when it sent one. */
  sourceLinkLayer?: Buffer;
  /** Every option in order, unknown ones included (§4.1: receivers ignore them). */
  options: NdpOption[];
}

/**
 * Decodes and checks an RS as far as its bytes allow (§6.1.1: code 0, at least 8 octets, no option
 * of length 0). The checks that need the IP header (hop limit 255, source address) are
 * checkSolicitationSource's and the caller's. The Reserved field is ignored, as §4.1 requires.
 */
export function decodeRouterSolicitation(buf: Uint8Array): RouterSolicitation {
  readNdpHeader(buf, ICMP6_ROUTER_SOLICITATION, 'router solicitation', FIXED);
  return readNdpOptions(buf, FIXED);
}

/**
 * §6.1.1: "If the IP source address is the unspecified address, there is no source link-layer
 * address option in the message." A solicitation breaking that rule is invalid and dropped.
 */
export function checkSolicitationSource(rs: RouterSolicitation, sourceUnspecified: boolean): void {
  if (sourceUnspecified && rs.sourceLinkLayer) {
    throw new DecodeError('router solicitation from :: carries a source link-layer address');
  }
}

/** Encodes an RS (checksum 0: the kernel fills it in). Tests use it to play the solicitor. */
export function encodeRouterSolicitation(opts: { sourceLinkLayer?: Uint8Array } = {}): Buffer {
  const w = new ByteWriter(16);
  w.u8(ICMP6_ROUTER_SOLICITATION).u8(0).u16(0).u32(0);
  if (opts.sourceLinkLayer) {
    writeNdpOptions(w, [linkLayerOption(NdpOptionType.SOURCE_LINK_LAYER_ADDRESS, opts.sourceLinkLayer)]);
  }
  return w.finish();
}
