import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Per-machine boot tokens: handed to a booting machine on its kernel command line and presented
 * back to the metadata API. Only the sha256 is stored, so a copy of the database cannot report
 * for a machine. A machine may hold several live tokens (every boot config answer issues one and
 * the rack may have rendered any of them); each lives until it expires.
 */
export function hashBootToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Issues a new token for the machine (Machine.id) valid for `ttlMs`, and drops expired ones. */
export function issueBootToken(
  db: Database.Database,
  machineId: number,
  ttlMs: number,
  now = Date.now(),
): string {
  // 32 random bytes, base64url: plain text on a kernel command line and in any script language.
  const token = randomBytes(32).toString('base64url');
  const created = new Date(now).toISOString();
  const expires = new Date(now + ttlMs).toISOString();
  db.transaction(() => {
    db.prepare('DELETE FROM boot_tokens WHERE expires_at <= ?').run(created);
    db.prepare(
      'INSERT INTO boot_tokens (token_hash, machine_id, created_at, expires_at) VALUES (?, ?, ?, ?)',
    ).run(hashBootToken(token), machineId, created, expires);
  })();
  return token;
}

/** The machine id a live token belongs to, or undefined (unknown, expired or malformed). */
export function machineIdForBootToken(
  db: Database.Database,
  token: string,
  now = Date.now(),
): number | undefined {
  if (token.length === 0 || token.length > 256) return undefined;
  const row = db
    .prepare('SELECT machine_id FROM boot_tokens WHERE token_hash = ? AND expires_at > ?')
    .get(hashBootToken(token), new Date(now).toISOString()) as { machine_id: number } | undefined;
  return row?.machine_id;
}
