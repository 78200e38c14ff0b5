import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../lib/errors.js';

/**
 * API keys. A key is 32 random bytes, so a plain sha256 is enough to store it (no salt or slow hash
 * is needed against guessing 256 bits); the key itself is returned once by createApiKey and never
 * again. `prefix` (the first characters) lets people tell keys apart in listings.
 */
export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export type ApiKeyCheck =
  | { result: 'valid'; key: ApiKey }
  | { result: 'revoked'; key: ApiKey }
  | { result: 'unknown' };

const KEY_PREFIX = 'kiln_';
/** Touching last_used_at on every request would turn every read into a write; once a minute is plenty. */
const TOUCH_INTERVAL_MS = 60_000;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const COLUMNS = 'id, name, prefix, created_at, last_used_at, revoked_at';

export function createApiKey(db: Database.Database, name: string): { key: string; apiKey: ApiKey } {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > 100) {
    throw new ValidationError('API key name must be 1 to 100 characters', { field: 'name' });
  }
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const prefix = key.slice(0, KEY_PREFIX.length + 6);
  const now = new Date().toISOString();
  const info = db
    .prepare('INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?)')
    .run(trimmed, prefix, hashApiKey(key), now);
  return { key, apiKey: getApiKey(db, Number(info.lastInsertRowid))! };
}

export function getApiKey(db: Database.Database, id: number): ApiKey | undefined {
  return db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`).get(id) as ApiKey | undefined;
}

export function listApiKeys(db: Database.Database): ApiKey[] {
  return db.prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY id`).all() as ApiKey[];
}

/**
 * Revokes by id, or by name when the name is unambiguous. Revoked keys stay listed (and get a 403
 * rather than a 401) so whoever still uses one learns why it stopped working.
 */
export function revokeApiKey(db: Database.Database, idOrName: string): ApiKey {
  const rows = /^\d+$/.test(idOrName)
    ? (db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`).all(Number(idOrName)) as ApiKey[])
    : (db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE name = ?`).all(idOrName) as ApiKey[]);
  if (rows.length === 0) throw new NotFoundError(`no API key with id or name '${idOrName}'`);
  if (rows.length > 1) {
    throw new ValidationError(`several API keys are named '${idOrName}': revoke by id`, {
      ids: rows.map((r) => r.id),
    });
  }
  const row = rows[0]!;
  if (row.revoked_at === null) {
    db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(new Date().toISOString(), row.id);
  }
  return getApiKey(db, row.id)!;
}

export function checkApiKey(db: Database.Database, key: string): ApiKeyCheck {
  const row = db.prepare(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = ?`).get(hashApiKey(key)) as
    | ApiKey
    | undefined;
  if (!row) return { result: 'unknown' };
  if (row.revoked_at !== null) return { result: 'revoked', key: row };
  const now = Date.now();
  if (row.last_used_at === null || now - Date.parse(row.last_used_at) > TOUCH_INTERVAL_MS) {
    const stamp = new Date(now).toISOString();
    db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(stamp, row.id);
    row.last_used_at = stamp;
  }
  return { result: 'valid', key: row };
}
