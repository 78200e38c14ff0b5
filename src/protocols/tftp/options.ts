/**
 * Option negotiation for read requests (RFC 2347), with the options kiln understands: blksize
 * (RFC 2348), timeout and tsize (RFC 2349), windowsize (RFC 7440). Pure: the caller passes the
 * request's options, its own limits and the transfer size, and gets back what to use and what to
 * put in the OACK.
 */
import { DEFAULT_BLKSIZE, MAX_BLKSIZE, type TftpOption } from './packet.js';

export interface NegotiationLimits {
  /** Largest block we agree to; RFC 2348 lets the server answer less than asked. */
  maxBlksize: number;
  /** Largest window we agree to; RFC 7440 §3 lets the server answer less than asked. */
  maxWindowsize: number;
  /**
   * Cap on blksize × windowsize: the bytes one transfer keeps in flight and in memory. With
   * hundreds of transfers at once this is what bounds memory, whatever the clients ask for.
   */
  maxWindowBytes: number;
}

export const DEFAULT_LIMITS: NegotiationLimits = {
  maxBlksize: MAX_BLKSIZE,
  maxWindowsize: 64,
  maxWindowBytes: 1 << 20,
};

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** The client's retransmission timeout in ms (RFC 2349 §3), or undefined: use the server's own. */
  timeoutMs: number | undefined;
  /** Options to acknowledge, in the client's order and spelling; empty means send no OACK. */
  oack: TftpOption[];
}

const DECIMAL = /^[0-9]{1,10}$/;

function parseDecimal(value: string): number | undefined {
  return DECIMAL.test(value) ? Number(value) : undefined;
}

/**
 * Decide the options of a read transfer of `size` bytes (as it will go on the wire).
 *
 * RFC 2347 §2: option names are case-insensitive, the server acknowledges only what it accepts and
 * silently leaves out the rest, and with nothing accepted no OACK is sent (the transfer starts with
 * DATA 1 as in RFC 1350). An option given twice is taken once, first value wins. An option with a
 * value outside its RFC range is left out rather than refused with error 8, so a client with an odd
 * value still gets its file at the defaults.
 */
export function negotiate(
  options: readonly TftpOption[],
  limits: NegotiationLimits,
  size: number,
): Negotiated {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  const oack: TftpOption[] = [];
  const seen = new Set<string>();
  let windowIndex = -1;

  for (const { name, value } of options) {
    const key = name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const n = parseDecimal(value);
    if (n === undefined) continue;
    switch (key) {
      case 'blksize':
        // RFC 2348 §2: valid 8..65464; the server may answer a smaller value. A value above the
        // range is clamped rather than ignored: the client clearly wants large blocks.
        if (n < 8) break;
        blksize = Math.min(n, MAX_BLKSIZE, Math.max(8, limits.maxBlksize));
        oack.push({ name, value: String(blksize) });
        break;
      case 'timeout':
        // RFC 2349 §3: 1..255 seconds, and the server answers the same value or leaves it out.
        if (n < 1 || n > 255) break;
        timeoutMs = n * 1000;
        oack.push({ name, value });
        break;
      case 'tsize':
        // RFC 2349 §4: in a read request the client sends 0 and the server answers the size.
        oack.push({ name, value: String(size) });
        break;
      case 'windowsize':
        // RFC 7440 §3: valid 1..65535; the server may answer a smaller value.
        if (n < 1 || n > 65535) break;
        windowsize = Math.min(n, Math.max(1, limits.maxWindowsize));
        windowIndex = oack.length;
        oack.push({ name, value: String(windowsize) });
        break;
      default:
        // Unknown options (multicast from RFC 2090, vendor ones) are left out of the OACK.
        break;
    }
  }

  // The memory cap depends on both options, so it is applied once both are known.
  const byBytes = Math.max(1, Math.floor(limits.maxWindowBytes / blksize));
  if (windowsize > byBytes) {
    windowsize = byBytes;
    const entry = oack[windowIndex];
    if (entry) oack[windowIndex] = { name: entry.name, value: String(windowsize) };
  }
  return { blksize, windowsize, timeoutMs, oack };
}
