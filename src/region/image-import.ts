import { relative } from 'node:path';
import type Database from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../lib/errors.js';
import { type BootResource, putBootResource } from '../storage/boot-resources.js';
import { checkSha256, type ImageStore, type ImportProgress } from './image-store.js';

/**
 * Importing a boot resource: store each file (content-addressed, verified), then record the
 * resource and its file set in one transaction. Files go first: when the metadata commits, every
 * file it names is already complete, so a rack listing resources never gets a sha256 it cannot
 * download. A failed import changes nothing a reader can see (a file stored before the failure
 * is unreferenced and harmless).
 */

export interface ImportFileSpec {
  /** Name within the resource: `vmlinuz`, `initrd.img`, `squashfs`. */
  name: string;
  /** What it is for: `kernel`, `initrd`, `squashfs` (the boot policy looks files up by this). */
  filetype: string;
  /** A local path or http(s) URL. Absent: the file must already be in the store (uploaded) by sha256. */
  source?: string | undefined;
  /** Expected content hash; required without a source. */
  sha256?: string | undefined;
}

export interface ImportResourceSpec {
  name: string;
  architecture: string;
  kind: string;
  files: ImportFileSpec[];
}

export interface ImportResourceOptions {
  onProgress?: ((p: ImportProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
  maxBytes?: number | undefined;
}

/** Default file names by type, as `kiln images import --kernel/--initrd/--squashfs` uses them. */
export const DEFAULT_FILE_NAMES: Readonly<Record<string, string>> = {
  kernel: 'vmlinuz',
  initrd: 'initrd.img',
  squashfs: 'squashfs',
};

const ARCH = /^[a-z0-9_]+\/[a-z0-9_.-]+$/;

export async function importBootResource(
  db: Database.Database,
  store: ImageStore,
  spec: ImportResourceSpec,
  opts: ImportResourceOptions = {},
): Promise<BootResource> {
  // Cheap checks before downloading gigabytes; the repository checks everything again.
  if (!ARCH.test(spec.architecture)) {
    throw new ValidationError('architecture: must look like arch/subarch, e.g. amd64/generic', {
      issues: [{ field: 'architecture', message: 'must look like arch/subarch' }],
    });
  }
  if (spec.files.length === 0) throw new ValidationError('files: a boot resource needs at least one file');
  const stored = [];
  for (const [i, f] of spec.files.entries()) {
    if (f.source === undefined) {
      if (f.sha256 === undefined) {
        throw new ValidationError(
          `files.${i}: give a source (path or URL) or the sha256 of an uploaded file`,
        );
      }
      const sha = checkSha256(f.sha256, `files.${i}.sha256`);
      const have = store.stat(sha);
      if (!have)
        throw new NotFoundError(`files.${i}: no uploaded file with sha256 ${sha}; upload it first`, {
          sha256: sha,
        });
      stored.push({ spec: f, file: have });
      continue;
    }
    const file = await store.put(f.source, {
      sha256: f.sha256,
      label: f.name,
      onProgress: opts.onProgress,
      signal: opts.signal,
      maxBytes: opts.maxBytes,
    });
    stored.push({ spec: f, file });
  }
  return putBootResource(db, {
    name: spec.name,
    architecture: spec.architecture,
    kind: spec.kind,
    files: stored.map(({ spec: f, file }) => ({
      name: f.name,
      filetype: f.filetype,
      sha256: file.sha256,
      size: file.size,
      path: relative(store.dataDir, file.path),
    })),
  });
}
