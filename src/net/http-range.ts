/**
 * The Range request header (RFC 9110 §14.2), for one file of known size. Pure: a string in, a plan
 * out. kiln honours one byte range; anything it does not serve as a 206 is either answered with the
 * whole file (§14.2: a server MAY ignore Range) or, when the range lies past the end, with 416.
 */
export type RangePlan =
  /** No usable Range: answer 200 with the whole file. */
  | { kind: 'full' }
  /** Answer 206 with bytes start..end inclusive (§14.4 Content-Range: bytes start-end/size). */
  | { kind: 'partial'; start: number; end: number }
  /** Answer 416 with Content-Range: bytes *\/size (§15.5.17). */
  | { kind: 'unsatisfiable' };

// 15 decimal digits stay below 2^53; a longer number is past any file we could hold.
const MAX_DIGITS = 15;
const FULL: RangePlan = { kind: 'full' };
const UNSATISFIABLE: RangePlan = { kind: 'unsatisfiable' };

function toNumber(digits: string): number {
  return digits.length > MAX_DIGITS ? Number.MAX_SAFE_INTEGER : Number(digits);
}

export function planRange(header: string | undefined, size: number): RangePlan {
  if (header === undefined) return FULL;
  const eq = header.indexOf('=');
  if (eq < 0) return FULL;
  // §14.1: range units are case-insensitive; only "bytes" is defined.
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL;
  const set = header.slice(eq + 1);
  // Several ranges would need multipart/byteranges; boot clients never ask for it: whole file.
  if (set.includes(',')) return FULL;
  const m = /^[ \t]*(\d*)-(\d*)[ \t]*$/.exec(set);
  if (!m) return FULL;
  const first = m[1] ?? '';
  const last = m[2] ?? '';
  if (first === '' && last === '') return FULL;
  if (first === '') {
    // suffix-range "-N": the last N bytes (§14.1.2). "-0" selects nothing.
    const n = toNumber(last);
    if (n === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = toNumber(first);
  if (last !== '') {
    const end = toNumber(last);
    // §14.1.1: last-pos below first-pos makes the range invalid: ignore the header.
    if (end < start) return FULL;
    if (start >= size) return UNSATISFIABLE;
    return { kind: 'partial', start, end: Math.min(end, size - 1) };
  }
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'partial', start, end: size - 1 };
}
