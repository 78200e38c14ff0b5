/**
 * netascii (RFC 1350 §1, which defers to the Telnet NVT of RFC 764): end of line is CR LF, and a
 * bare CR is sent as CR NUL. Boot firmware always asks for octet; tftp-hpa's client defaults to
 * netascii, so an operator testing by hand gets text files right.
 */

const CR = 0x0d;
const LF = 0x0a;

/** Encode local text (Unix line ends) for the wire: LF → CR LF, CR → CR NUL. */
export function toNetascii(data: Uint8Array): Buffer {
  let extra = 0;
  for (const b of data) if (b === CR || b === LF) extra++;
  if (extra === 0) return Buffer.from(data);
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (const b of data) {
    if (b === LF) {
      out[o++] = CR;
      out[o++] = LF;
    } else if (b === CR) {
      out[o++] = CR;
      out[o++] = 0;
    } else {
      out[o++] = b;
    }
  }
  return out;
}

/** Decode wire netascii to local text: CR LF → LF, CR NUL → CR; any other CR is kept as it is. */
export function fromNetascii(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === CR && i + 1 < data.length) {
      const next = data[i + 1];
      if (next === LF) {
        out[o++] = LF;
        i++;
        continue;
      }
      if (next === 0) {
        out[o++] = CR;
        i++;
        continue;
      }
    }
    out[o++] = b;
  }
  return out.subarray(0, o);
}
