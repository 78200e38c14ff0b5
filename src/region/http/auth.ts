import type Database from 'better-sqlite3';
import type { Context, Next } from 'koa';
import { checkApiKey } from '../../storage/api-keys.js';
import { forbidden, unauthorized } from './errors.js';

/** Paths under /api/v1 that need no key: the API description is public so tools can discover it. */
const PUBLIC_API_PATHS = new Set(['/api/v1/openapi.json']);

export function isApiPath(path: string): boolean {
  return path === '/api/v1' || path.startsWith('/api/v1/');
}

/**
 * `Authorization: Bearer <key>` on every /api/v1 request. Missing or unknown key → 401, a revoked
 * one → 403 (the caller is known but no longer allowed). Paths outside /api/v1 (/healthz, /metrics,
 * /rpc, the UI's files) are public and pass through untouched.
 */
export function apiKeyAuth(db: Database.Database) {
  return async function auth(ctx: Context, next: Next): Promise<void> {
    if (!isApiPath(ctx.path) || PUBLIC_API_PATHS.has(ctx.path)) return next();
    const header = ctx.get('Authorization');
    if (!header) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kiln"');
      throw unauthorized(
        'missing API key: send "Authorization: Bearer <key>" (create one with `kiln apikey create`)',
      );
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kiln"');
      throw unauthorized('malformed Authorization header: expected "Bearer <key>"');
    }
    const check = checkApiKey(db, m[1]!);
    if (check.result === 'unknown') {
      ctx.set('WWW-Authenticate', 'Bearer realm="kiln", error="invalid_token"');
      throw unauthorized('invalid API key');
    }
    if (check.result === 'revoked') {
      throw forbidden(
        `API key '${check.key.name}' (${check.key.prefix}…) was revoked at ${check.key.revoked_at}`,
      );
    }
    ctx.state.apiKey = check.key;
    return next();
  };
}
