import { readFileSync } from 'node:fs';
import { KilnError } from '../lib/errors.js';

/**
 * The shared RPC secret on disk: hex (what kiln writes) of at least 16 bytes. Both roles read it —
 * the region its own `<data_dir>/secret`, a rack `rack.secret_file` — so the format lives here, once.
 * Never logged.
 */
export function parseSecret(text: string, path: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0 || hex.length < 32) {
    throw new KilnError(
      'KILN_ERR_SECRET',
      `RPC secret file ${path} does not hold a hex secret of at least 16 bytes; copy the region's <data_dir>/secret`,
      { path },
    );
  }
  return Buffer.from(hex, 'hex');
}

/** Read and parse a secret file; `missingHint` tells the operator what to do when it is absent. */
export function readSecretFile(path: string, missingHint: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(
      'KILN_ERR_SECRET',
      code === 'ENOENT'
        ? `RPC secret file ${path} does not exist: ${missingHint}`
        : `cannot read RPC secret file ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
  return parseSecret(text, path);
}
