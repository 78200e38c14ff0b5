import { readFileSync } from 'node:fs';
import { KilnError } from '../lib/errors.js';

/**
 * The shared RPC secret as the rack reads it: rack.secret_file, or `<data_dir>/secret` (the file
 * the region creates, which `kiln all` shares). Hex, at least 16 bytes. Never logged.
 */
export function readRackSecret(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(
      'KILN_ERR_SECRET',
      code === 'ENOENT'
        ? `RPC secret file ${path} does not exist: copy the region's <data_dir>/secret here, or set rack.secret_file (KILN_RACK_SECRET_FILE)`
        : `cannot read RPC secret file ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    );
  }
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
