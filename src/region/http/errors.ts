import type { Context, Next } from 'koa';
import { HttpError, KilnError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';

/**
 * The one error shape every API answer uses: `{"error": {"code", "message", "details"}}`. Handlers
 * throw typed errors (ValidationError, NotFoundError, ConflictError, HttpError...) and this
 * middleware turns them into a status and that body; nothing else writes error bodies.
 */
export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/** A KilnError that carries its HTTP status, for the cases the shared error classes do not cover. */
export { HttpError };

export const unauthorized = (message: string) => new HttpError(401, 'KILN_ERR_UNAUTHORIZED', message);
export const forbidden = (message: string) => new HttpError(403, 'KILN_ERR_FORBIDDEN', message);

const STATUS_BY_CODE: Record<string, number> = {
  KILN_ERR_VALIDATION: 400,
  KILN_ERR_NOT_FOUND: 404,
  KILN_ERR_CONFLICT: 409,
};

/** Koa's own errors (ctx.throw, koa-static) carry a status but no kiln code: give them one. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'KILN_ERR_VALIDATION',
  401: 'KILN_ERR_UNAUTHORIZED',
  403: 'KILN_ERR_FORBIDDEN',
  404: 'KILN_ERR_NOT_FOUND',
  405: 'KILN_ERR_METHOD_NOT_ALLOWED',
  409: 'KILN_ERR_CONFLICT',
  413: 'KILN_ERR_PAYLOAD_TOO_LARGE',
  415: 'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
  501: 'KILN_ERR_NOT_IMPLEMENTED',
};

export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, details: details ?? {} } };
}

/** Status and body for anything thrown; unknown errors become a 500 whose body leaks nothing. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof HttpError) {
    return { status: err.status, body: errorBody(err.code, err.message, err.details), internal: false };
  }
  if (err instanceof KilnError) {
    const status = STATUS_BY_CODE[err.code];
    if (status) return { status, body: errorBody(err.code, err.message, err.details), internal: false };
    return { status: 500, body: errorBody(err.code, err.message, err.details), internal: true };
  }
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    const code = CODE_BY_STATUS[e.status] ?? 'KILN_ERR_HTTP';
    const message = e.expose && typeof e.message === 'string' ? e.message : `HTTP ${e.status}`;
    return { status: e.status, body: errorBody(code, message), internal: false };
  }
  return {
    status: 500,
    body: errorBody('KILN_ERR_INTERNAL', 'internal error; the region log has the details'),
    internal: true,
  };
}

/**
 * Outermost middleware. Client mistakes are logged at debug (they are the client's to fix, and a
 * noisy client must not flood the log); our own faults at error with the stack.
 */
export function errorMiddleware(logger: Logger) {
  return async function errors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      const { status, body, internal } = toErrorResponse(err);
      if (internal) logger.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      else logger.debug({ code: body.error.code, method: ctx.method, path: ctx.path }, body.error.message);
      ctx.status = status;
      ctx.body = body;
      const allow = (err as { headers?: Record<string, string> })?.headers?.Allow;
      if (allow) ctx.set('Allow', allow);
    }
  };
}
