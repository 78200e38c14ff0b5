import { readFileSync } from 'node:fs';

/**
 * The RPC protocol version both ends announce in the handshake. Bump it when a command is added
 * (the command's `since` names the version that added it); peers with a different major cannot
 * talk at all. MIN_PEER_VERSION is the oldest peer this code still serves.
 */
export const PROTOCOL_VERSION = 1;
export const MIN_PEER_VERSION = 1;

export function versionCompatible(peer: number): boolean {
  return Number.isInteger(peer) && peer >= MIN_PEER_VERSION;
}

let software: string | undefined;

/** kiln's package version, announced in the handshake and recorded for racks. */
export function softwareVersion(): string {
  if (software === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      software = pkg.version ?? 'unknown';
    } catch {
      software = 'unknown';
    }
  }
  return software;
}
