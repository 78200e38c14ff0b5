/**
 * TFTP packets (RFC 1350, with RFC 2347's OACK): pure encode/decode on bytes. No sockets, no clock.
 *
 * Every decode checks lengths before reading and yields either a packet or a DecodeError, so a
 * server can drop anything malformed without special cases.
 */
import { ByteReader, ByteWriter } from '../../lib/bytes.js';
import { DecodeError } from '../../lib/errors.js';

/** RFC 1350 §5 (opcodes 1–5), RFC 2347 §2 (opcode 6). */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** RFC 1350 Appendix "Error Codes", plus 8 from RFC 2347 §2 (option negotiation refused). */
export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

/** One option as the peer sent it: name with its original case, value as the raw string. */
export interface TftpOption {
  name: string;
  value: string;
}

export interface RequestPacket {
  op: typeof Opcode.RRQ | typeof Opcode.WRQ;
  filename: string;
  /** As sent; compare case-insensitively (RFC 1350 §5: "netascii", "octet", "mail" in any case). */
  mode: string;
  /** In the order sent; duplicates kept (negotiation decides what they mean). */
  options: TftpOption[];
}

export interface DataPacket {
  op: typeof Opcode.DATA;
  /** Wire block number, 0..65535 (it wraps on long transfers). */
  block: number;
  data: Uint8Array;
}

export interface AckPacket {
  op: typeof Opcode.ACK;
  block: number;
}

export interface ErrorPacket {
  op: typeof Opcode.ERROR;
  code: number;
  message: string;
}

export interface OackPacket {
  op: typeof Opcode.OACK;
  options: TftpOption[];
}

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

/** RFC 2348 §2: the largest block a client may ask for (65535 less IP and UDP headers, rounded). */
export const MAX_BLKSIZE = 65464;
/** RFC 1350 §1: the block size when no blksize option is agreed. */
export const DEFAULT_BLKSIZE = 512;

// Filenames and option strings travel as NUL-terminated text. RFC 1350 says netascii; firmware and
// operators in practice send ASCII, and we take UTF-8 so that any non-ASCII name round-trips.
// Malformed UTF-8 is rejected rather than replaced: a replaced name could resolve to another file.
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new DecodeError(`${what} is not valid UTF-8`);
  }
}

/** Reads bytes up to the next NUL and consumes the NUL; a missing terminator is malformed. */
function readCString(r: ByteReader, buf: Uint8Array, what: string): string {
  const start = r.offset;
  const end = buf.indexOf(0, start);
  if (end < 0) throw new DecodeError(`${what} is not NUL-terminated`);
  const text = decodeText(r.bytes(end - start, what), what);
  r.skip(1, `${what} terminator`);
  return text;
}

/**
 * Option pairs (RFC 2347 §2): `opt1 NUL value1 NUL ... optN NUL valueN NUL`.
 *
 * Some PXE ROMs pad requests with zero bytes after the last string; an empty option name where
 * one would start is taken as the start of that padding, and everything after it must be zeros.
 */
function readOptions(r: ByteReader, buf: Uint8Array): TftpOption[] {
  const options: TftpOption[] = [];
  while (r.remaining > 0) {
    if (buf[r.offset] === 0) {
      const pad = r.rest();
      if (pad.some((b) => b !== 0)) throw new DecodeError('bytes after an empty option name');
      break;
    }
    const name = readCString(r, buf, 'option name');
    if (r.remaining === 0) throw new DecodeError(`option ${name} has no value`);
    const value = readCString(r, buf, `option ${name} value`);
    options.push({ name, value });
  }
  return options;
}

/** Decode one datagram. Throws DecodeError for anything that is not a well-formed TFTP packet. */
export function decodePacket(buf: Uint8Array): TftpPacket {
  const r = new ByteReader(buf);
  const op = r.u16('opcode');
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      //  2 bytes     string    1 byte     string   1 byte   (RFC 1350 §5, Figure 5-1)
      //  ------------------------------------------------
      // | Opcode |  Filename  |   0  |    Mode    |   0  |  [ opt | 0 | value | 0 ]*  (RFC 2347 §2)
      //  ------------------------------------------------
      const filename = readCString(r, buf, 'filename');
      if (filename.length === 0) throw new DecodeError('empty filename');
      const mode = readCString(r, buf, 'mode');
      if (mode.length === 0) throw new DecodeError('empty mode');
      const options = readOptions(r, buf);
      return { op, filename, mode, options };
    }
    case Opcode.DATA: {
      //  2 bytes     2 bytes      n bytes         (RFC 1350 §5, Figure 5-2)
      //  ----------------------------------
      // | Opcode |   Block #  |   Data     |
      //  ----------------------------------
      const block = r.u16('block number');
      if (r.remaining > MAX_BLKSIZE)
        throw new DecodeError(`DATA carries ${r.remaining} bytes, over ${MAX_BLKSIZE}`);
      return { op, block, data: r.rest() };
    }
    case Opcode.ACK: {
      //  2 bytes     2 bytes                      (RFC 1350 §5, Figure 5-3)
      //  ---------------------
      // | Opcode |   Block #  |
      //  ---------------------
      const block = r.u16('block number');
      if (r.remaining !== 0) throw new DecodeError(`ACK has ${r.remaining} trailing bytes`);
      return { op, block };
    }
    case Opcode.ERROR: {
      //  2 bytes     2 bytes      string    1 byte   (RFC 1350 §5, Figure 5-4)
      //  -----------------------------------------
      // | Opcode |  ErrorCode |   ErrMsg   |   0  |
      //  -----------------------------------------
      const code = r.u16('error code');
      // The message is for people. Some clients leave off its terminator; accept that rather than
      // miss the fact that the peer gave up (the code is what matters).
      const rest = r.rest();
      const nul = rest.indexOf(0);
      if (nul >= 0 && rest.subarray(nul).some((b) => b !== 0)) {
        throw new DecodeError('bytes after the error message terminator');
      }
      const message = decodeText(nul >= 0 ? rest.subarray(0, nul) : rest, 'error message');
      return { op, code, message };
    }
    case Opcode.OACK: {
      //  2 bytes
      //  -------------------------------------------------
      // | Opcode |  opt1  | 0 | value1 | 0 |  ...  | 0 |   (RFC 2347 §2)
      //  -------------------------------------------------
      const options = readOptions(r, buf);
      // RFC 2347 §2: an OACK acknowledges options; with none there is nothing to acknowledge.
      if (options.length === 0) throw new DecodeError('OACK without options');
      return { op, options };
    }
    default:
      throw new DecodeError(`unknown opcode ${op}`);
  }
}

const utf8Bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

function writeCString(w: ByteWriter, s: string, what: string): void {
  const b = utf8Bytes(s);
  if (b.includes(0)) throw new RangeError(`${what} contains NUL`);
  w.bytes(b).u8(0);
}

function checkU16(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff)
    throw new RangeError(`${what} ${n} is not a 16-bit number`);
}

/** Encode a packet. Throws RangeError for values that cannot be put on the wire (our bug, not input). */
export function encodePacket(p: TftpPacket): Buffer {
  switch (p.op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      if (p.filename.length === 0 || p.mode.length === 0) throw new RangeError('empty filename or mode');
      const w = new ByteWriter(64).u16(p.op);
      writeCString(w, p.filename, 'filename');
      writeCString(w, p.mode, 'mode');
      for (const o of p.options) {
        if (o.name.length === 0) throw new RangeError('empty option name');
        writeCString(w, o.name, 'option name');
        writeCString(w, o.value, 'option value');
      }
      return w.finish();
    }
    case Opcode.DATA:
      return encodeData(p.block, p.data);
    case Opcode.ACK: {
      checkU16(p.block, 'block');
      const b = Buffer.allocUnsafe(4);
      b.writeUInt16BE(Opcode.ACK, 0);
      b.writeUInt16BE(p.block, 2);
      return b;
    }
    case Opcode.ERROR:
      return encodeError(p.code, p.message);
    case Opcode.OACK: {
      if (p.options.length === 0) throw new RangeError('OACK without options');
      const w = new ByteWriter(64).u16(Opcode.OACK);
      for (const o of p.options) {
        if (o.name.length === 0) throw new RangeError('empty option name');
        writeCString(w, o.name, 'option name');
        writeCString(w, o.value, 'option value');
      }
      return w.finish();
    }
  }
}

/**
 * A DATA packet: the header and a copy of the payload in one buffer that the caller may hand to
 * the socket and forget (the source chunk may be reused afterwards).
 */
export function encodeData(block: number, data: Uint8Array): Buffer {
  checkU16(block, 'block');
  if (data.length > MAX_BLKSIZE) throw new RangeError(`DATA payload ${data.length} over ${MAX_BLKSIZE}`);
  const b = Buffer.allocUnsafe(4 + data.length);
  b.writeUInt16BE(Opcode.DATA, 0);
  b.writeUInt16BE(block, 2);
  b.set(data, 4);
  return b;
}

export function encodeError(code: number, message: string): Buffer {
  checkU16(code, 'error code');
  const w = new ByteWriter(8 + message.length).u16(Opcode.ERROR).u16(code);
  // A message is ours to write; drop any NUL rather than let it cut the string short on the wire.
  writeCString(w, message.replaceAll('\0', ''), 'error message');
  return w.finish();
}
