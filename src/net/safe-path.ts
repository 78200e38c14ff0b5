import { realpath } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';

/**
 * Resolve a path that came from the network under `root`, or return null when it would leave it.
 * Refused: NUL bytes, `..` segments (also percent-encoded ones, which some clients send raw),
 * backslashes used as separators, and symlinks whose target lies outside root. A leading `/` is
 * taken as relative to root (TFTP clients send both `pxelinux.0` and `/pxelinux.0`).
 *
 * Returns the real path of an existing file under root, or null (not found or refused); `refused`
 * tells the caller to log the attempt with the client's address.
 */
export async function resolveUnderRoot(
  root: string,
  requested: string,
): Promise<{ path: string } | { path: null; refused: boolean }> {
  if (requested.length === 0 || requested.length > 4096) return { path: null, refused: true };
  if (requested.includes('\0') || requested.includes('\\')) return { path: null, refused: true };
  let decoded = requested;
  if (/%[0-9a-fA-F]{2}/.test(requested)) {
    try {
      decoded = decodeURIComponent(requested);
    } catch {
      return { path: null, refused: true };
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return { path: null, refused: true };
  }
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..')) return { path: null, refused: true };
  const relative = normalize(segments.filter((s) => s !== '' && s !== '.').join('/'));
  if (isAbsolute(relative) || relative.startsWith('..')) return { path: null, refused: true };

  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return { path: null, refused: false };
  }
  let real: string;
  try {
    real = await realpath(join(realRoot, relative));
  } catch {
    return { path: null, refused: false };
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return { path: null, refused: true };
  return { path: real };
}
