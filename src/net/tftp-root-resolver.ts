/**
 * A BootResolver that serves files from one directory: for tests, benchmarks and a rack that only
 * hands out static loaders. The rack's booter does the same for its static files and adds
 * rendered configs; this one decides nothing but "is it under the root".
 */
import { KilnError } from '../lib/errors.js';
import type { BootRequest, BootResolver, BootSource } from './boot-source.js';
import { resolveUnderRoot } from './safe-path.js';

/**
 * A path from the network that would leave the served root (traversal, encoded dots, NUL,
 * symlinks out). Boot servers answer it with "access violation" / 403 and log the client's
 * address. Any resolver may throw a KilnError with this code for the same effect.
 */
export const PATH_REFUSED = 'KILN_ERR_FORBIDDEN';

export class PathRefusedError extends KilnError {
  constructor(path: string) {
    super(PATH_REFUSED, 'path refused: outside the served root', { path });
  }
}

export function fileRootResolver(root: string): BootResolver {
  return {
    async resolve(req: BootRequest): Promise<BootSource | null> {
      const r = await resolveUnderRoot(root, req.path);
      if (r.path !== null) return { kind: 'file', path: r.path };
      if (r.refused) throw new PathRefusedError(req.path);
      return null;
    },
  };
}
