/**
 * Block numbering. TFTP block numbers are 16 bits (RFC 1350 §5) but files at small block sizes
 * need more than 65535 blocks (32 MiB at 512 bytes). Transfers count blocks with unbounded
 * absolute numbers and put `abs mod 65536` on the wire, so after 65535 comes 0: what tftp-hpa,
 * atftp, curl, iPXE and EDK2 expect when they roll over.
 */

/** The number of DATA blocks for `size` bytes: always one short block at the end, maybe empty (RFC 1350 §6). */
export function blockCount(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

export function wireBlock(abs: number): number {
  return abs % 0x10000;
}

/**
 * The absolute block a wire ACK number names, given the last acknowledged block `base` and the last
 * block sent `sent` (base ≤ sent, sent − base < 65536). Returns a number in [base, sent], or
 * undefined when the ACK names no block of the window: a stale ACK from long ago, or nonsense.
 * `base` itself is a duplicate ACK, which the caller must not answer by sending (RFC 1350 §6
 * errata, "Sorcerer's Apprentice").
 */
export function ackedBlock(wire: number, base: number, sent: number): number | undefined {
  const abs = base + ((wire - wireBlock(base) + 0x10000) % 0x10000);
  return abs <= sent ? abs : undefined;
}
