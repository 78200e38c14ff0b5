import { DecodeError } from '../../lib/errors.js';
import { Opt, type Options, readOptionRun } from './options.js';

/**
 * The BOOTP/DHCP message (RFC 2131 §2, figure 1):
 *
 *   0               1               2               3
 *   +---------------+---------------+---------------+---------------+
 *   |  op (1)       |  htype (1)    |  hlen (1)     |  hops (1)     |
 *   +---------------+---------------+---------------+---------------+
 *   |                            xid (4)                            |
 *   +-------------------------------+-------------------------------+
 *   |           secs (2)            |           flags (2)           |
 *   +-------------------------------+-------------------------------+
 *   |  ciaddr (4) | yiaddr (4) | siaddr (4) | giaddr (4)            |
 *   +---------------------------------------------------------------+
 *   |  chaddr (16) | sname (64) | file (128)                         |
 *   +---------------------------------------------------------------+
 *   |  magic cookie 99.130.83.99 (4) | options (variable)            |
 *   +---------------------------------------------------------------+
 *
 * Addresses are unsigned 32-bit numbers here (cheap to compare and to range-check); lib/ipv4 turns
 * them into text.
 */
export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** Always 16 bytes; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** Server host name field; empty when it carried overloaded options. */
  sname: string;
  /** Boot file field; empty when it carried overloaded options. */
  file: string;
  options: Options;
}

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 §2: the leftmost bit of flags asks the server to broadcast its reply. */
export const FLAG_BROADCAST = 0x8000;

const HEADER = 236;
const SNAME_AT = 44;
const FILE_AT = 108;
const COOKIE = 0x63825363;
/** RFC 2131 §2: servers and clients must accept 576-byte IP datagrams; replies are padded to the BOOTP 300. */
const BOOTP_MIN = 300;
/** The largest DHCP message we will build: one Ethernet frame minus IP and UDP headers. */
export const MAX_DHCP_SIZE = 1472;

function fieldString(buf: Buffer, at: number, len: number): string {
  const nul = buf.indexOf(0, at);
  const end = nul === -1 || nul > at + len ? at + len : nul;
  return buf.toString('latin1', at, end);
}

/** Decode one DHCP message. Anything malformed is a DecodeError; nothing else is thrown. */
export function decodePacket(input: Uint8Array): DhcpPacket {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < HEADER + 4) throw new DecodeError(`DHCP message too short: ${buf.length} bytes`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DecodeError(`bad op ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DecodeError(`hardware address length ${hlen} exceeds 16`);
  if (buf.readUInt32BE(HEADER) !== COOKIE) throw new DecodeError('no DHCP magic cookie (plain BOOTP)');

  const options: Options = new Map();
  readOptionRun(buf, HEADER + 4, buf.length, options);
  // RFC 2131 §4.1 / RFC 3396: overload says file and/or sname hold more options, read after the
  // options field, file before sname.
  const overload = options.get(Opt.Overload);
  let fileHasOptions = false;
  let snameHasOptions = false;
  if (overload !== undefined) {
    if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) {
      throw new DecodeError('option 52 (overload) must be one byte 1..3');
    }
    fileHasOptions = (overload[0]! & 1) !== 0;
    snameHasOptions = (overload[0]! & 2) !== 0;
    if (fileHasOptions) readOptionRun(buf, FILE_AT, FILE_AT + 128, options);
    if (snameHasOptions) readOptionRun(buf, SNAME_AT, SNAME_AT + 64, options);
  }
  const mt = options.get(Opt.MessageType);
  if (mt !== undefined && (mt.length !== 1 || mt[0]! < 1 || mt[0]! > 18)) {
    throw new DecodeError('option 53 (message type) must be one byte in range');
  }
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: buf.readUInt32BE(12),
    yiaddr: buf.readUInt32BE(16),
    siaddr: buf.readUInt32BE(20),
    giaddr: buf.readUInt32BE(24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: snameHasOptions ? '' : fieldString(buf, SNAME_AT, 64),
    file: fileHasOptions ? '' : fieldString(buf, FILE_AT, 128),
    options,
  };
}

function writeOption(out: Buffer, at: number, code: number, value: Buffer): number {
  // RFC 3396 §6: a value longer than 255 bytes goes out as consecutive instances of the same code.
  let i = 0;
  do {
    const n = Math.min(255, value.length - i);
    out[at++] = code;
    out[at++] = n;
    value.copy(out, at, i, i + n);
    at += n;
    i += n;
  } while (i < value.length);
  return at;
}

function encodedOptionSize(value: Buffer): number {
  return value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
}

export class EncodeError extends RangeError {}

/**
 * Encode a message. `maxSize` is the largest datagram the receiver accepts (its option 57, at least
 * 576); options that do not fit raise EncodeError rather than being cut silently.
 */
export function encodePacket(p: DhcpPacket, maxSize = MAX_DHCP_SIZE): Buffer {
  if (p.sname.length > 63 || p.file.length > 127) throw new EncodeError('sname or file too long');
  let size = HEADER + 4 + 1;
  for (const [code, v] of p.options) {
    if (code === Opt.Pad || code === Opt.End) continue;
    size += encodedOptionSize(v);
  }
  if (size > maxSize) throw new EncodeError(`reply needs ${size} bytes, receiver accepts ${maxSize}`);
  const out = Buffer.alloc(Math.max(size, BOOTP_MIN));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs & 0xffff, 8);
  out.writeUInt16BE(p.flags & 0xffff, 10);
  out.writeUInt32BE(p.ciaddr >>> 0, 12);
  out.writeUInt32BE(p.yiaddr >>> 0, 16);
  out.writeUInt32BE(p.siaddr >>> 0, 20);
  out.writeUInt32BE(p.giaddr >>> 0, 24);
  p.chaddr.copy(out, 28, 0, Math.min(16, p.chaddr.length));
  out.write(p.sname, SNAME_AT, 63, 'latin1');
  out.write(p.file, FILE_AT, 127, 'latin1');
  out.writeUInt32BE(COOKIE, HEADER);
  let at = HEADER + 4;
  // Message type first: some PXE ROMs look for it at the start of the options.
  const mt = p.options.get(Opt.MessageType);
  if (mt !== undefined) at = writeOption(out, at, Opt.MessageType, mt);
  for (const [code, v] of p.options) {
    if (code === Opt.Pad || code === Opt.End || code === Opt.MessageType) continue;
    at = writeOption(out, at, code, v);
  }
  out[at] = Opt.End;
  return out;
}

/** The client hardware address as it is on the wire (first hlen bytes of chaddr). */
export function hardwareAddress(p: DhcpPacket): Buffer {
  return p.chaddr.subarray(0, p.hlen);
}
