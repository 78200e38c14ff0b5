import type { Context } from 'koa';
import type { z } from 'zod';
import { ValidationError } from '../../lib/errors.js';
import { HttpError } from './errors.js';

/**
 * Request validation shared by every route file (plugins too). Bodies and queries go through zod
 * strict objects, so a field the API does not know is an error naming it rather than silently
 * ignored: a typo in `hostnmae` must not create a machine with a generated name.
 */

export interface FieldIssue {
  field: string;
  message: string;
}

function fieldName(path: ReadonlyArray<PropertyKey>): string {
  return path.length ? path.map(String).join('.') : '(body)';
}

/** Flattens zod issues into `{field, message}` pairs; unknown keys become one issue per key. */
export function issuesOf(error: z.ZodError): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        out.push({ field: fieldName([...issue.path, key]), message: 'unknown field' });
    } else {
      out.push({ field: fieldName(issue.path), message: issue.message });
    }
  }
  return out;
}

export function validationError(where: 'body' | 'query' | 'path', error: z.ZodError): ValidationError {
  const issues = issuesOf(error);
  const first = issues[0];
  const summary = first ? `${first.field}: ${first.message}` : 'invalid';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new ValidationError(`invalid ${where}: ${summary}${more}`, { issues });
}

/** Parses `value` with `schema` or throws a 400 naming the first bad field. */
export function parseWith<S extends z.ZodType>(
  where: 'body' | 'query' | 'path',
  schema: S,
  value: unknown,
): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(where, r.error);
  return r.data;
}

/** Validates the query string. Koa gives `string | string[]`; repeated keys are refused unless the schema takes an array. */
export function parseQuery<S extends z.ZodType>(ctx: Context, schema: S): z.output<S> {
  return parseWith('query', schema, { ...ctx.query });
}

/**
 * Reads the raw body with a hard byte limit (413 past it, checked on Content-Length first and then
 * while streaming, so a lying client cannot make us buffer more), requires JSON, and parses it.
 */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<unknown> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limitBytes) {
    throw new HttpError(
      413,
      'KILN_ERR_PAYLOAD_TOO_LARGE',
      `request body is larger than ${limitBytes} bytes`,
      {
        limit: limitBytes,
      },
    );
  }
  const type = ctx.request.type;
  if (type && type !== 'application/json') {
    throw new HttpError(
      415,
      'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
      `request body must be application/json, not ${type}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      // Stop reading; the connection cannot be reused with an unread body, so close it after answering.
      ctx.set('Connection', 'close');
      throw new HttpError(
        413,
        'KILN_ERR_PAYLOAD_TOO_LARGE',
        `request body is larger than ${limitBytes} bytes`,
        {
          limit: limitBytes,
        },
      );
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ValidationError('request body is empty: a JSON object is required');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** readJsonBody + parseWith, the usual pair. The limit is the app's (region.http.body_limit_bytes) via ctx.state. */
export async function parseBody<S extends z.ZodType>(ctx: Context, schema: S): Promise<z.output<S>> {
  const limit = (ctx.state as { bodyLimit?: number }).bodyLimit ?? 1_048_576;
  return parseWith('body', schema, await readJsonBody(ctx, limit));
}
