import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { explainOpenError, type OpenDatabaseOptions, openDatabase } from './database.js';
import { regionMigrations } from './migrations/index.js';
import { runMigrations } from './migrations.js';

export const REGION_DB_FILE = 'region.db';

/**
 * Opens (creating if needed) `<data_dir>/region.db` and brings its schema up to date. The database
 * holds power credentials and API key hashes, so data_dir is created 0700 and the file kept 0600.
 */
export function openRegionDatabase(
  dataDir: string,
  logger: Logger,
  opts: OpenDatabaseOptions = {},
): Database.Database {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new KilnError(
      'KILN_ERR_DB_OPEN',
      `cannot create data_dir ${dataDir}: ${(err as Error).message}. Create it, or set data_dir (KILN_DATA_DIR) to a directory kiln may write.`,
      { path: dataDir },
      { cause: err },
    );
  }
  const path = join(dataDir, REGION_DB_FILE);
  const created = !existsSync(path);
  const db = openDatabase(path, logger, opts);
  if (created) {
    try {
      chmodSync(path, 0o600);
    } catch (err) {
      logger.warn({ path, err: (err as Error).message }, 'could not restrict database file mode to 0600');
    }
  }
  try {
    runMigrations(db, regionMigrations, logger);
  } catch (err) {
    db.close();
    // Another process holding the write lock shows up here, as the first write: say so plainly.
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (typeof cause?.code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(cause.code))
      throw explainOpenError(path, cause);
    throw err;
  }
  return db;
}
