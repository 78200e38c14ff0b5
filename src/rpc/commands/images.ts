import { z } from 'zod';
import { defineCommand } from '../command.js';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits');

/** One file of a boot resource, as a rack needs it to sync its cache. */
export const BootImageFile = z.object({
  /** Name within the resource: `vmlinuz`, `initrd.img`, `squashfs`. */
  name: z.string().min(1).max(255),
  /** `kernel`, `initrd`, `squashfs`, ... */
  filetype: z.string().min(1).max(128),
  sha256: Sha256,
  size: z.number().int().nonnegative(),
});
export type BootImageFile = z.infer<typeof BootImageFile>;

export const BootImage = z.object({
  name: z.string().min(1).max(255),
  architecture: z.string().min(1).max(64),
  kind: z.string().min(1).max(128),
  files: z.array(BootImageFile).max(64),
});
export type BootImage = z.infer<typeof BootImage>;

/**
 * rack → region: the boot images the region holds, after MAAS's ListBootImages. The rack downloads
 * each file it lacks from `<region http url>/images/<sha256>` with `Authorization: Bearer
 * <http_token from RegisterRack>`, verifies the sha256, and serves only verified files.
 */
export const ListBootImages = defineCommand({
  name: 'ListBootImages',
  servedBy: 'region',
  since: 1,
  summary: 'Every boot resource with its files (name, type, sha256, size), for the rack image cache.',
  args: z.strictObject({}),
  result: z.object({ images: z.array(BootImage).max(10_000) }),
  errors: [],
});

/** region → rack: images changed (an import finished); sync the cache now instead of at the next poll. */
export const SyncBootImages = defineCommand({
  name: 'SyncBootImages',
  servedBy: 'rack',
  since: 1,
  summary: 'Ask the rack to sync its image cache now. Answers at once; the sync runs in the background.',
  args: z.strictObject({}),
  result: z.object({ started: z.boolean() }),
  errors: [],
});
