/**
 * Where a TFTP transfer's bytes come from: a file read in chunks on demand (big files never sit
 * whole in memory, once per transfer) or a rendered body already in memory.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { toNetascii } from '../protocols/tftp/netascii.js';

export interface TransferSource {
  /** Bytes as they go on the wire (after netascii encoding, if any): what tsize reports. */
  readonly size: number;
  /**
   * Up to `length` bytes from `offset` (fewer only at the end). The buffer is the caller's to keep
   * until it asks again; packets copy out of it.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export class ContentSource implements TransferSource {
  readonly size: number;

  constructor(private readonly body: Uint8Array) {
    this.size = body.length;
  }

  /** The whole body: a transfer that holds it never has to ask again. */
  get whole(): Uint8Array {
    return this.body;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.body.subarray(offset, Math.min(offset + length, this.size));
  }

  async close(): Promise<void> {}
}

export class FileSource implements TransferSource {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** Opens a regular file; anything else (a directory, a device) is reported as not a file. */
  static async open(path: string): Promise<FileSource | 'not-a-file'> {
    const handle = await open(path, constants.O_RDONLY);
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return 'not-a-file';
      }
      return new FileSource(handle, st.size);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    // A file that shrinks under a transfer ends it short; the read returns what is there.
    while (got < want) {
      const { bytesRead } = await this.handle.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * netascii changes the length, so block N no longer maps to a file offset; text files are small
 * (configs), so they are encoded whole. Past `maxBytes` the request is refused instead.
 */
export async function netasciiSource(
  source: TransferSource,
  maxBytes: number,
): Promise<ContentSource | null> {
  try {
    if (source.size > maxBytes) return null;
    const raw = await source.read(0, source.size);
    return new ContentSource(toNetascii(raw));
  } finally {
    await source.close();
  }
}
