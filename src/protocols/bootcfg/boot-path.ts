import { isMac, type Mac, parseMac } from '../../lib/mac.js';

/**
 * The names kiln's boot namespace answers, the same over TFTP and HTTP. This is a pure parser of a
 * path that came from the network: it never throws, and anything it does not recognise is `file`
 * (a first-stage loader or module, resolved under its root by the caller) or `unknown`.
 */
export type BootPath =
  | { kind: 'boot-ipxe' }
  | { kind: 'ipxe-machine'; mac: Mac; buildarch?: string; platform?: string }
  | { kind: 'pxelinux-mac'; mac: Mac }
  | { kind: 'pxelinux-default' }
  /** Hex-IP or UUID names pxelinux tries after the MAC: not found, so it moves on to `default`. */
  | { kind: 'pxelinux-fallback' }
  | { kind: 'grub-mac'; mac: Mac }
  | { kind: 'grub-default' }
  | { kind: 'image'; sha256: string; name: string }
  /** A plain file name (loader, c32 module), without leading slash; the caller confines it. */
  | { kind: 'file'; name: string }
  | { kind: 'unknown' };

const MAX_PATH = 1024;
const WORD = /^[A-Za-z0-9_]{1,32}$/;

export function parseBootPath(raw: string): BootPath {
  if (raw.length === 0 || raw.length > MAX_PATH) return { kind: 'unknown' };
  const q = raw.indexOf('?');
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  const query = q >= 0 ? raw.slice(q + 1) : '';
  const path = pathPart.replace(/^\/+/, '');

  if (path === 'boot.ipxe') return { kind: 'boot-ipxe' };

  let m = /^boot\/([0-9A-Fa-f:-]{12,17})\.ipxe$/.exec(path);
  if (m && isMac(m[1]!)) {
    const out: BootPath = { kind: 'ipxe-machine', mac: parseMac(m[1]!) };
    for (const part of query.split('&')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const key = part.slice(0, eq);
      const value = part.slice(eq + 1);
      // Values are only kept when they are plain words: they end up in logs and RPC arguments.
      if (!WORD.test(value)) continue;
      if (key === 'buildarch') out.buildarch = value;
      else if (key === 'platform') out.platform = value;
    }
    return out;
  }

  if (path === 'pxelinux.cfg/default') return { kind: 'pxelinux-default' };
  // pxelinux sends the ARP hardware type (01 = Ethernet) before the dashed MAC.
  m = /^pxelinux\.cfg\/01-([0-9A-Fa-f-]{17})$/.exec(path);
  if (m && isMac(m[1]!)) return { kind: 'pxelinux-mac', mac: parseMac(m[1]!) };
  if (
    /^pxelinux\.cfg\/([0-9A-F]{1,8}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.test(path)
  ) {
    return { kind: 'pxelinux-fallback' };
  }

  if (path === 'grub/grub.cfg') return { kind: 'grub-default' };
  m = /^grub\/grub\.cfg-([0-9A-Fa-f:-]{12,17})$/.exec(path);
  if (m && isMac(m[1]!)) return { kind: 'grub-mac', mac: parseMac(m[1]!) };

  m = /^images\/([0-9a-f]{64})\/([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.exec(path);
  if (m) return { kind: 'image', sha256: m[1]!, name: m[2]! };

  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(path)) return { kind: 'file', name: path };
  return { kind: 'unknown' };
}
