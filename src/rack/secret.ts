import { readSecretFile } from '../rpc/secret.js';

/**
 * The shared RPC secret as the rack reads it: rack.secret_file, or `<data_dir>/secret` (the file
 * the region creates, which `kiln all` shares).
 */
export function readRackSecret(path: string): Buffer {
  return readSecretFile(
    path,
    "copy the region's <data_dir>/secret here, or set rack.secret_file (KILN_RACK_SECRET_FILE)",
  );
}
