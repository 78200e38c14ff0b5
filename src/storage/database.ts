import Database from 'better-sqlite3';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export interface OpenDatabaseOptions {
  /** How long a statement waits for another process's lock before failing (ms). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/** An operator-facing reason for a SQLite failure at open time, keyed by SQLite's result code. */
export function explainOpenError(path: string, err: unknown): KilnError {
  const code = (err as { code?: string }).code ?? '';
  const msg = (err as Error).message ?? String(err);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new KilnError(
      'KILN_ERR_DB_CORRUPT',
      `database ${path} is not a valid SQLite database or is corrupt (${msg}). Restore it from a backup, or move it aside to start with an empty inventory.`,
      { path, sqlite_code: code },
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new KilnError(
      'KILN_ERR_DB_LOCKED',
      `database ${path} is locked by another process (${msg}). Is another kiln region, or a sqlite3 shell, holding it? Stop it and start again.`,
      { path, sqlite_code: code },
      { cause: err },
    );
  }
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_PERM')
  ) {
    return new KilnError(
      'KILN_ERR_DB_OPEN',
      `cannot open database ${path} for writing (${msg}). Check that the directory exists and belongs to the user kiln runs as.`,
      { path, sqlite_code: code },
      { cause: err },
    );
  }
  return new KilnError(
    'KILN_ERR_DB_OPEN',
    `cannot open database ${path}: ${msg}`,
    { path, sqlite_code: code },
    { cause: err },
  );
}

/**
 * Opens a SQLite file the way every kiln database wants it: WAL (readers never block the writer,
 * several region workers share the file), foreign keys enforced (SQLite leaves them off), a busy
 * timeout so concurrent writers queue instead of failing, and synchronous=NORMAL (safe with WAL: a
 * power cut may lose the last commits, never corrupt the file). A file that is not a database,
 * is corrupt or is held by another process becomes a KilnError with a sentence an operator can act on.
 */
export function openDatabase(
  path: string,
  logger: Logger,
  opts: OpenDatabaseOptions = {},
): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  } catch (err) {
    throw explainOpenError(path, err);
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busyTimeoutMs ?? 5000))}`);
    // SQLite only notices a non-database file when it first reads a page: read the schema now so a
    // bad file fails here, at start-up, rather than on the first API request.
    db.prepare('SELECT count(*) AS n FROM sqlite_master').get();
    if (!opts.readonly) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') {
        logger.warn({ path, journal_mode: mode }, 'database could not switch to WAL mode');
      }
    }
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
  } catch (err) {
    db.close();
    throw explainOpenError(path, err);
  }
  return db;
}

/** Turns a SQLite constraint failure into its kind, so repositories can answer 409 or 404. */
export function constraintKind(err: unknown): 'unique' | 'foreign_key' | 'other' | undefined {
  const code = (err as { code?: string }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_CONSTRAINT')) return undefined;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique';
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key';
  return 'other';
}
