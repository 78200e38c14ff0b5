import { readFileSync } from 'node:fs';
import type Router from '@koa/router';
import { z } from 'zod';
import type { RoutePlugin } from './plugin.js';

/**
 * The OpenAPI 3.1 document at /api/v1/openapi.json, assembled from each route file's `paths`
 * fragment. Request schemas come from the same zod schemas the routes validate with
 * (z.toJSONSchema), so the document cannot drift from what the server accepts.
 */

export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** `:system_id` → `{system_id}`: koa-router's path syntax to OpenAPI's. */
export function openapiPath(koaPath: string): string {
  return koaPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', examples: ['KILN_ERR_VALIDATION'] },
        message: { type: 'string' },
        details: { type: 'object' },
      },
    },
  },
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request: the message and details name the field',
  401: 'Missing or invalid API key',
  403: 'API key revoked',
  404: 'Not found',
  409: 'Conflict with stored data (duplicate MAC, hostname, CIDR...)',
  413: 'Request body over the size limit',
  415: 'Request body is not JSON',
};

export interface OperationSpec {
  summary: string;
  tag: string;
  /** Path parameter names, in order (all strings). */
  pathParams?: string[];
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Success status and the schema of its body (omit for 204). */
  status?: number;
  response?: Record<string, unknown>;
  /** Error statuses besides 400/401/403, which every authenticated operation can give. */
  errors?: number[];
  public?: boolean;
}

/** One OpenAPI operation object from a compact description. */
export function operation(spec: OperationSpec): Record<string, unknown> {
  const parameters: Array<Record<string, unknown>> = [];
  for (const name of spec.pathParams ?? []) {
    parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
  }
  if (spec.query) {
    const js = jsonSchema(spec.query) as {
      properties?: Record<string, Record<string, unknown>>;
      required?: string[];
    };
    for (const [name, schema] of Object.entries(js.properties ?? {})) {
      const { description, ...rest } = schema;
      parameters.push({
        name,
        in: 'query',
        required: js.required?.includes(name) ?? false,
        schema: rest,
        ...(description ? { description } : {}),
      });
    }
  }
  const status = spec.status ?? 200;
  const responses: Record<string, unknown> = {
    [String(status)]: spec.response
      ? { description: 'Success', content: { 'application/json': { schema: spec.response } } }
      : { description: 'Success' },
  };
  const errs = new Set<number>([...(spec.public ? [] : [400, 401, 403]), ...(spec.errors ?? [])]);
  if (spec.body) {
    errs.add(400);
    errs.add(413);
    errs.add(415);
  }
  for (const e of [...errs].sort()) {
    responses[String(e)] = {
      description: ERROR_TEXT[e] ?? 'Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return {
    summary: spec.summary,
    tags: [spec.tag],
    ...(spec.public ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(spec.body
      ? {
          requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(spec.body) } } },
        }
      : {}),
    responses,
  };
}

/** The `{items, next}` envelope every list answers with. */
export function pageSchema(item: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    required: ['items', 'next'],
    properties: {
      items: { type: 'array', items: item },
      next: {
        type: ['string', 'null'],
        description: 'Opaque cursor for the next page (pass as ?cursor=), null on the last page',
      },
    },
  };
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildOpenApiDocument(plugins: RoutePlugin[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const p of plugins) {
    for (const [path, ops] of Object.entries(p.openapi ?? {})) {
      paths[path] = { ...(paths[path] ?? {}), ...(ops as Record<string, unknown>) };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'kiln region API',
      version: version(),
      description:
        'Inventory and control of bare-metal machines. Every /api/v1 route needs `Authorization: Bearer <key>` ' +
        '(`kiln apikey create`). Lists are cursor-paginated: `?limit=` (default 100, max 1000) and `?cursor=` ' +
        'from the previous page\'s `next`. Errors always have the shape `{"error": {"code", "message", "details"}}`.',
    },
    servers: [{ url: '/' }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A kiln API key' } },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}

/** Every (method, path) a router serves, in OpenAPI path syntax; HEAD is implied by GET. */
export function routesOf(router: Router): Array<{ method: string; path: string }> {
  const out: Array<{ method: string; path: string }> = [];
  for (const layer of router.stack) {
    if (typeof layer.path !== 'string') continue;
    for (const m of layer.methods) {
      if (m === 'HEAD') continue;
      out.push({ method: m.toLowerCase(), path: openapiPath(layer.path) });
    }
  }
  return out;
}
