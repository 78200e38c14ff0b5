import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import { checkApiKey } from '../../storage/api-keys.js';
import type { BootResource } from '../../storage/boot-resources.js';
import { importBootResource } from '../image-import.js';
import {
  ChecksumMismatchError,
  checkSha256,
  ImageSourceError,
  type ImageStore,
  ImageTooLargeError,
  SHA256_RE,
} from '../image-store.js';
import { verifyRackHttpToken } from '../rack-token.js';
import { HttpError, unauthorized } from './errors.js';
import { operation } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { parseBody, parseQuery } from './validate.js';

/**
 * Image routes:
 * - `POST /api/v1/images[?sha256=]`: upload one file as the raw request body (any content type);
 *   answers `{sha256, size}`. With `sha256` the upload must match it, and a file already stored is
 *   not read again (the body is drained and 200 answered instead of 201).
 * - `POST /api/v1/boot-resources/import`: create or replace a boot resource from uploaded files (by
 *   sha256) and/or http(s) URLs the region fetches itself. Local paths are refused: an API client
 *   must not make the region read its own files.
 * - `GET|HEAD /images/<sha256>`: a stored file, for racks (`Authorization: Bearer <rack http token>`
 *   from RegisterRack) and for API keys. Outside /api/v1 so the rack's token works without a key.
 */

export interface ImageRoutesOptions {
  db: Database.Database;
  store: ImageStore;
  logger: Logger;
  /** The shared RPC secret: rack HTTP tokens are derived from it. */
  secret: Buffer;
  /** Largest file accepted by upload or URL import. */
  maxFileBytes?: number;
  /** Called after a resource was imported (e.g. to tell racks to sync). Errors are logged, not thrown. */
  onImported?: (resource: BootResource) => void | Promise<void>;
}

export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 ** 3;

const uploadQuery = z.strictObject({ sha256: z.string().max(64).optional() });

const importBody = z.strictObject({
  name: z.string().min(1).max(128),
  architecture: z.string().min(1).max(64),
  kind: z.string().min(1).max(128).default('os'),
  files: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(128),
        filetype: z.string().min(1).max(128),
        url: z
          .string()
          .max(4096)
          .regex(/^https?:\/\//i, 'must be an http:// or https:// URL')
          .optional(),
        sha256: z.string().max(64).optional(),
      }),
    )
    .min(1)
    .max(16),
});

const storedSchema = {
  type: 'object',
  required: ['sha256', 'size'],
  properties: { sha256: { type: 'string' }, size: { type: 'integer' } },
};

/** `Authorization: Bearer <token>`: a rack's HTTP token or a valid API key. */
function authorizeDownload(ctx: Context, db: Database.Database, secret: Buffer): void {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(ctx.get('Authorization'));
  if (!m) {
    ctx.set('WWW-Authenticate', 'Bearer realm="kiln"');
    throw unauthorized('send "Authorization: Bearer <rack token or API key>"');
  }
  const token = m[1]!;
  if (token.startsWith('rack.')) {
    if (verifyRackHttpToken(secret, token) !== null) return;
  } else if (checkApiKey(db, token).result === 'valid') {
    return;
  }
  ctx.set('WWW-Authenticate', 'Bearer realm="kiln", error="invalid_token"');
  throw unauthorized('invalid rack token or API key');
}

/** Source failures are the request's fault when it named the source: answer 400/422, not 500. */
function rethrowImportError(err: unknown): never {
  if (err instanceof ChecksumMismatchError) {
    throw new HttpError(422, err.code, err.message, err.details);
  }
  if (err instanceof ImageSourceError || err instanceof ImageTooLargeError)
    throw new HttpError(422, err.code, err.message, err.details);
  throw err;
}

export function imageRoutes(opts: ImageRoutesOptions): RoutePlugin {
  const { db, store, logger, secret } = opts;
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const router = new Router();

  router.post('/api/v1/images', async (ctx) => {
    const q = parseQuery(ctx, uploadQuery);
    const expected = q.sha256 !== undefined ? checkSha256(q.sha256, 'sha256') : undefined;
    if (expected !== undefined) {
      const have = store.stat(expected);
      if (have) {
        ctx.req.resume();
        ctx.set('Connection', 'close');
        ctx.status = 200;
        ctx.body = { sha256: have.sha256, size: have.size };
        return;
      }
    }
    const declared = ctx.request.length;
    if (declared !== undefined && declared > maxBytes) {
      ctx.set('Connection', 'close');
      throw new HttpError(413, 'KILN_ERR_PAYLOAD_TOO_LARGE', `upload is larger than ${maxBytes} bytes`, {
        limit: maxBytes,
      });
    }
    const aborted = new AbortController();
    const onClose = () => {
      if (!ctx.req.complete) aborted.abort(new ImageSourceError('upload interrupted: the client went away'));
    };
    ctx.req.once('close', onClose);
    try {
      const file = await store.putStream(ctx.req, {
        sha256: expected,
        total: declared ?? null,
        maxBytes,
        label: 'upload',
        signal: aborted.signal,
      });
      if (declared !== undefined && file.size !== declared) {
        throw new ImageSourceError(`upload: got ${file.size} bytes, Content-Length said ${declared}`);
      }
      ctx.status = 201;
      ctx.body = { sha256: file.sha256, size: file.size };
    } catch (err) {
      // An unread request body makes the connection unusable for the next request.
      ctx.set('Connection', 'close');
      if (err instanceof ImageTooLargeError) {
        throw new HttpError(413, 'KILN_ERR_PAYLOAD_TOO_LARGE', err.message, { limit: maxBytes });
      }
      rethrowImportError(err);
    } finally {
      ctx.req.off('close', onClose);
    }
  });

  router.post('/api/v1/boot-resources/import', async (ctx) => {
    const body = await parseBody(ctx, importBody);
    let resource: BootResource;
    try {
      resource = await importBootResource(
        db,
        store,
        {
          name: body.name,
          architecture: body.architecture,
          kind: body.kind,
          files: body.files.map((f) => ({
            name: f.name,
            filetype: f.filetype,
            source: f.url,
            sha256: f.sha256,
          })),
        },
        { maxBytes },
      );
    } catch (err) {
      rethrowImportError(err);
    }
    logger.info(
      {
        name: resource.name,
        architecture: resource.architecture,
        kind: resource.kind,
        files: resource.files.length,
      },
      'boot resource imported',
    );
    if (opts.onImported) {
      Promise.resolve()
        .then(() => opts.onImported?.(resource))
        .catch((err: unknown) => logger.warn({ err }, 'after-import notification failed'));
    }
    ctx.status = 201;
    ctx.body = { ...resource, files: resource.files.map(({ path: _path, ...f }) => f) };
  });

  const serve = (ctx: Context) => {
    authorizeDownload(ctx, db, secret);
    const sha = String(ctx.params.sha256 ?? '');
    const st = SHA256_RE.test(sha) ? store.stat(sha) : null;
    if (!st) throw new HttpError(404, 'KILN_ERR_NOT_FOUND', `no image file ${sha.slice(0, 64)}`);
    ctx.set('Content-Type', 'application/octet-stream');
    // The name is the content: a file under it never changes.
    ctx.set('ETag', `"${sha}"`);
    ctx.set('Cache-Control', 'private, max-age=31536000, immutable');
    ctx.length = st.size;
    if (ctx.method === 'HEAD') {
      ctx.status = 200;
      return;
    }
    ctx.body = store.open(sha).stream;
  };
  router.get('/images/:sha256', serve);
  router.head('/images/:sha256', serve);

  const openapi = {
    '/api/v1/images': {
      post: {
        ...operation({
          summary: 'Upload one image file (raw body); answers its sha256',
          tag: 'images',
          query: uploadQuery,
          status: 201,
          response: storedSchema,
          errors: [413, 422],
        }),
        requestBody: {
          required: true,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
      },
    },
    '/api/v1/boot-resources/import': {
      post: operation({
        summary: 'Create or replace a boot resource from uploaded files and/or http(s) URLs',
        tag: 'boot-resources',
        body: importBody,
        status: 201,
        response: { type: 'object' },
        errors: [404, 422],
      }),
    },
  };
  return { router, openapi };
}
