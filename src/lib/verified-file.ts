import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from './errors.js';

/**
 * Writes a stream to a file named after its sha256, so that the name is a promise about the
 * content: bytes go to a temp file (hashed and counted on the way), are checked against what the
 * caller expects, synced to disk, and only then renamed into place. A reader of `<destDir>/<sha256>`
 * therefore never sees a partial or wrong file, and on any failure the temp file is removed. A
 * crash mid-write can leave a temp file only: callers clean their temp directory at start.
 *
 * The region's image store and the rack's image cache both keep files this way; each maps the
 * typed errors below (and any stream or fs error, passed through as thrown) onto its own.
 */

export interface VerifiedWriteOptions {
  /** Where the temp file is written; on the same filesystem as `destDir`, so rename is atomic. */
  tmpDir: string;
  /** The file ends up at `<destDir>/<sha256>`. */
  destDir: string;
  /** Start of the temp file's name (a random part and `.part` follow), e.g. the writer's pid. */
  tmpPrefix?: string;
  /** Stop with FileTooLargeError as soon as more than this many bytes have arrived. */
  maxBytes?: number;
  /** The content must hash to this (lower-case hex) or nothing is kept. */
  sha256?: string;
  /** The content must be exactly this long or nothing is kept. */
  size?: number;
  signal?: AbortSignal;
  /** Called after each accepted chunk with the bytes so far (progress, idle timers). */
  onChunk?: (bytes: number) => void;
}

export interface VerifiedFile {
  sha256: string;
  size: number;
  path: string;
}

/** More bytes arrived than the writer accepts; nothing was kept. */
export class FileTooLargeError extends KilnError {
  constructor(readonly maxBytes: number) {
    super('KILN_ERR_FILE_TOO_LARGE', `more than ${maxBytes} bytes`, { maxBytes });
  }
}

/** The content that arrived is not the one expected (sha256 or size); nothing was kept. */
export class FileMismatchError extends KilnError {
  constructor(
    readonly expected: { sha256?: string | undefined; size?: number | undefined },
    readonly actual: { sha256: string; size: number },
  ) {
    super(
      'KILN_ERR_FILE_MISMATCH',
      `got ${actual.size} bytes with sha256 ${actual.sha256}, expected ${describeExpected(expected)}`,
      { expected, actual },
    );
  }
}

function describeExpected(e: { sha256?: string | undefined; size?: number | undefined }): string {
  const parts: string[] = [];
  if (e.size !== undefined) parts.push(`${e.size} bytes`);
  if (e.sha256 !== undefined) parts.push(`sha256 ${e.sha256}`);
  return parts.join(' with ');
}

export async function writeVerifiedFile(stream: Readable, opts: VerifiedWriteOptions): Promise<VerifiedFile> {
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const tmp = join(opts.tmpDir, `${opts.tmpPrefix ?? ''}${randomBytes(8).toString('hex')}.part`);
  const hash = createHash('sha256');
  let bytes = 0;
  const onChunk = opts.onChunk;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        cb(new FileTooLargeError(maxBytes));
        return;
      }
      hash.update(chunk);
      onChunk?.(bytes);
      cb(null, chunk);
    },
  });
  try {
    // 'wx': a temp name that already exists is someone else's; never write into it.
    const out = createWriteStream(tmp, { mode: 0o644, flags: 'wx' });
    await pipeline(stream, meter, out, opts.signal ? { signal: opts.signal } : {});
    const actual = hash.digest('hex');
    if (
      (opts.sha256 !== undefined && actual !== opts.sha256) ||
      (opts.size !== undefined && bytes !== opts.size)
    ) {
      throw new FileMismatchError({ sha256: opts.sha256, size: opts.size }, { sha256: actual, size: bytes });
    }
    // Synced before the rename: after a power cut the name must not point at missing blocks.
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const path = join(opts.destDir, actual);
    await rename(tmp, path);
    return { sha256: actual, size: bytes, path };
  } finally {
    await rm(tmp, { force: true });
  }
}
