import { DecodeError } from '../../lib/errors.js';

/**
 * DHCPv4 option codes kiln reads or writes (RFC 2132 unless noted). Options travel as a Map from
 * code to value bytes; a code that appeared several times has its values already concatenated
 * (RFC 3396 §7), so callers never see the split.
 */
export const Opt = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DomainServer: 6,
  HostName: 12,
  DomainName: 15,
  BroadcastAddress: 28,
  VendorSpecific: 43,
  RequestedAddress: 50,
  LeaseTime: 51,
  Overload: 52,
  MessageType: 53,
  ServerId: 54,
  ParameterRequestList: 55,
  Message: 56,
  MaxMessageSize: 57,
  RenewalTime: 58,
  RebindingTime: 59,
  VendorClass: 60,
  ClientId: 61,
  TftpServerName: 66,
  BootfileName: 67,
  UserClass: 77,
  RelayAgentInfo: 82,
  ClientSystemArch: 93,
  ClientNdi: 94,
  ClientGuid: 97,
  Ipxe: 175,
  End: 255,
} as const;

export type Options = Map<number, Buffer>;

function wrongLength(code: number, len: number, want: string): DecodeError {
  return new DecodeError(`option ${code} has length ${len}, expected ${want}`, { option: code });
}

/** An option holding one IPv4 address, as a number; undefined when absent. */
export function optIp(opts: Options, code: number): number | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 4) throw wrongLength(code, v.length, '4');
  return v.readUInt32BE(0);
}

/** An option holding a list of IPv4 addresses (router, DNS). */
export function optIps(opts: Options, code: number): number[] | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length % 4 !== 0) throw wrongLength(code, v.length, 'a multiple of 4');
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(v.readUInt32BE(i));
  return out;
}

export function optU8(opts: Options, code: number): number | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 1) throw wrongLength(code, v.length, '1');
  return v[0]!;
}

export function optU16(opts: Options, code: number): number | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 2) throw wrongLength(code, v.length, '2');
  return v.readUInt16BE(0);
}

export function optU32(opts: Options, code: number): number | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  if (v.length !== 4) throw wrongLength(code, v.length, '4');
  return v.readUInt32BE(0);
}

/**
 * An option holding text. NVT ASCII per RFC 2132, but firmware sends what it likes: decode as latin1
 * so every byte maps to one character, and strip the trailing NULs some clients append.
 */
export function optString(opts: Options, code: number): string | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  let end = v.length;
  while (end > 0 && v[end - 1] === 0) end--;
  return v.toString('latin1', 0, end);
}

export function ipBytes(ip: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(ip >>> 0, 0);
  return b;
}

export function ipsBytes(ips: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(4 * ips.length);
  ips.forEach((ip, i) => {
    b.writeUInt32BE(ip >>> 0, i * 4);
  });
  return b;
}

export function u32Bytes(n: number): Buffer {
  return ipBytes(n);
}

export function u16Bytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n & 0xffff, 0);
  return b;
}

/**
 * Parse a run of code/length/value options from `buf[start, end)` into `into`, appending to values
 * already there (RFC 3396 §7: split options are concatenated in the order they appear, across the
 * options, file and sname fields). Stops at End; a missing End is tolerated because some BOOTP relays
 * strip it, but an option running past the end of its field is a DecodeError.
 */
export function readOptionRun(buf: Buffer, start: number, end: number, into: Options): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.Pad) {
      i++;
      continue;
    }
    if (code === Opt.End) return;
    if (i + 1 >= end) throw new DecodeError(`option ${code} at offset ${i} has no length byte`);
    const len = buf[i + 1]!;
    const from = i + 2;
    if (from + len > end) {
      throw new DecodeError(`option ${code} at offset ${i} claims ${len} bytes, ${end - from} left`, {
        option: code,
      });
    }
    const prev = into.get(code);
    const value = buf.subarray(from, from + len);
    into.set(code, prev === undefined ? value : Buffer.concat([prev, value]));
    i = from + len;
  }
}

/**
 * Encapsulated sub-options (option 43 PXE vendor options, 82 relay agent sub-options, 175 iPXE):
 * the same code/length/value layout inside one option's value. Pad and End are honoured as in
 * RFC 2132 §8.4.
 */
export function decodeSubOptions(value: Uint8Array): Options {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const out: Options = new Map();
  readOptionRun(buf, 0, buf.length, out);
  return out;
}

export function encodeSubOptions(sub: Options): Buffer {
  const parts: Buffer[] = [];
  for (const [code, v] of sub) {
    if (code === Opt.Pad || code === Opt.End) continue;
    if (v.length > 255) throw new RangeError(`sub-option ${code} longer than 255 bytes`);
    parts.push(Buffer.from([code, v.length]), v);
  }
  parts.push(Buffer.from([Opt.End]));
  return Buffer.concat(parts);
}
