/**
 * Option 77, user class. RFC 3004 §4 defines it as a list of length-prefixed strings, but iPXE and
 * older clients send one raw string (iPXE's ROMs send the four bytes `iPXE`, REFERENCE.md). A value
 * is read as RFC 3004 only when its length bytes tile it exactly; otherwise it is one raw string.
 */
export function decodeUserClass(value: Uint8Array): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    const n = value[i]!;
    if (n === 0 || i + 1 + n > value.length) return [Buffer.from(value).toString('latin1')];
    out.push(Buffer.from(value.subarray(i + 1, i + 1 + n)).toString('latin1'));
    i += 1 + n;
  }
  return out.length > 0 ? out : [''];
}

export function encodeUserClass(classes: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of classes) {
    const b = Buffer.from(c, 'latin1');
    if (b.length === 0 || b.length > 255) throw new RangeError('user class must be 1..255 bytes');
    parts.push(Buffer.from([b.length]), b);
  }
  return Buffer.concat(parts);
}
