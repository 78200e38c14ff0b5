/**
 * Neighbor Discovery options (RFC 4861 §4.6): type-length-value records after the fixed part of
 * every ND message, each a whole number of 8-octet units. Pure functions on bytes.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |    Length     |              ...              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                              ...                              ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   Length counts 8-octet units including Type and Length; 0 is invalid.
 */
import { ByteReader, type ByteWriter } from '../../lib/bytes.js';
import { DecodeError } from '../../lib/errors.js';

/** RFC 4861 §4.6 option types (only the ones kiln reads or writes are named). */
export const NdpOptionType = {
  SOURCE_LINK_LAYER_ADDRESS: 1,
  TARGET_LINK_LAYER_ADDRESS: 2,
  PREFIX_INFORMATION: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
} as const;

export interface NdpOption {
  type: number;
  /** The option's bytes after Type and Length (Length × 8 − 2 octets, padding included). */
  body: Buffer;
}

/**
 * Decodes the options area (from `offset` to the end of `buf`). RFC 4861 §6.1.1/§6.1.2: a message
 * with an option of length 0 is invalid, as is one whose last option does not fit; unknown types are
 * kept (receivers must skip them, §4.6).
 */
export function decodeNdpOptions(buf: Uint8Array, offset: number): NdpOption[] {
  const r = new ByteReader(buf, offset);
  const out: NdpOption[] = [];
  while (r.remaining > 0) {
    const type = r.u8('option type');
    const units = r.u8('option length');
    if (units === 0) throw new DecodeError(`ND option ${type} has length 0`, { type });
    const n = units * 8 - 2;
    if (n > r.remaining) {
      throw new DecodeError(`ND option ${type} needs ${n} bytes, ${r.remaining} left`, { type });
    }
    out.push({ type, body: r.copy(n, 'option body') });
  }
  return out;
}

/**
 * A link-layer address option (§4.6.1): the address, zero-padded to a multiple of 8 octets. On
 * Ethernet the body is exactly the 6-byte MAC, which is why `body` is the address there.
 */
export function linkLayerOption(type: number, address: Uint8Array): NdpOption {
  if (address.length === 0 || address.length > 253) {
    throw new RangeError(`link-layer address of ${address.length} bytes`);
  }
  const units = Math.ceil((address.length + 2) / 8);
  const body = Buffer.alloc(units * 8 - 2);
  body.set(address);
  return { type, body };
}

/** Appends options; each body must be 8n − 2 bytes (use linkLayerOption for addresses). */
export function writeNdpOptions(w: ByteWriter, options: readonly NdpOption[]): void {
  for (const o of options) {
    const size = o.body.length + 2;
    if (size % 8 !== 0 || size > 255 * 8 || o.type < 0 || o.type > 255) {
      throw new RangeError(`ND option ${o.type} body of ${o.body.length} bytes is not 8n-2`);
    }
    w.u8(o.type)
      .u8(size / 8)
      .bytes(o.body);
  }
}

/**
 * The part every ND message decode starts with (RFC 4861 §6.1.1, §6.1.2): at least `fixed` octets,
 * the expected ICMPv6 type, code 0. Returns a reader just past type and code.
 */
export function readNdpHeader(buf: Uint8Array, type: number, name: string, fixed: number): ByteReader {
  if (buf.length < fixed) throw new DecodeError(`${name} of ${buf.length} bytes (< ${fixed})`);
  const r = new ByteReader(buf);
  const got = r.u8('type');
  if (got !== type) throw new DecodeError(`ICMPv6 type ${got} is not a ${name}`, { type: got });
  const code = r.u8('code');
  if (code !== 0) throw new DecodeError(`${name} with code ${code}`, { code });
  return r;
}

/** The options after the fixed part, and the source link-layer address among them if present. */
export function readNdpOptions(
  buf: Uint8Array,
  fixed: number,
): { options: NdpOption[]; sourceLinkLayer?: Buffer } {
  const options = decodeNdpOptions(buf, fixed);
  const slla = options.find((o) => o.type === NdpOptionType.SOURCE_LINK_LAYER_ADDRESS);
  return { options, ...(slla ? { sourceLinkLayer: slla.body } : {}) };
}
