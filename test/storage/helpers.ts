import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { silentLogger } from '../../src/lib/logger.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

/** A fresh region database in its own temp dir; `cleanup` closes it and removes the dir. */
export function tempRegionDb(): { dir: string; db: Database.Database; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-storage-'));
  const db = openRegionDatabase(join(dir, 'data'), silentLogger);
  return {
    dir,
    db,
    cleanup: () => {
      if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
