import { ValidationError } from './errors.js';

/** IPv4 addresses as unsigned 32-bit numbers for arithmetic, dotted quads for everything else. */

export function ipToInt(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4)
    throw new ValidationError(`not an IPv4 address: ${JSON.stringify(text.slice(0, 40))}`);
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) {
      throw new ValidationError(`not an IPv4 address: ${JSON.stringify(text.slice(0, 40))}`);
    }
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isIpv4(text: string): boolean {
  try {
    ipToInt(text);
    return true;
  } catch {
    return false;
  }
}

export interface Cidr {
  /** Network address (host bits zero) as a number. */
  network: number;
  prefix: number;
  /** Netmask as a number. */
  mask: number;
}

export function parseCidr(text: string): Cidr {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text.trim());
  if (!m) throw new ValidationError(`not an IPv4 CIDR (a.b.c.d/n): ${JSON.stringify(text.slice(0, 40))}`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new ValidationError(`CIDR prefix must be 0..32: ${text}`);
  const addr = ipToInt(m[1]!);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((addr & ~mask) >>> 0 !== 0) {
    throw new ValidationError(
      `CIDR has host bits set: ${text} (network is ${intToIp((addr & mask) >>> 0)}/${prefix})`,
    );
  }
  return { network: addr, prefix, mask };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.network)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & c.mask) >>> 0 === c.network;
}

export function broadcastOf(c: Cidr): number {
  return (c.network | ~c.mask) >>> 0;
}
