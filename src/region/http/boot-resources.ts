import Router from '@koa/router';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { type BootResource, listBootResources, requireBootResource } from '../../storage/boot-resources.js';
import { type OperationSpec, operation, pageSchema } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { intId, pageQuery } from './schemas.js';
import { parseQuery } from './validate.js';

export const bootResourceListQuery = z.strictObject({
  name: z.string().max(128).optional(),
  architecture: z.string().max(64).optional(),
  kind: z.string().max(128).optional(),
  ...pageQuery,
});

/** The store's file paths are the region's business, not the API's. */
function view(r: BootResource) {
  return { ...r, files: r.files.map(({ path: _path, ...f }) => f) };
}

const resourceSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string', examples: ['ubuntu/noble'] },
    architecture: { type: 'string', examples: ['amd64/generic'] },
    kind: { type: 'string', examples: ['os'] },
    files: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          filetype: { type: 'string' },
          sha256: { type: 'string' },
          size: { type: 'integer' },
          created_at: { type: 'string', format: 'date-time' },
        },
      },
    },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
};

const one = (spec: Omit<OperationSpec, 'tag'>) => operation({ tag: 'boot-resources', ...spec });

export function bootResourceRoutes(db: Database.Database): RoutePlugin {
  const router = new Router();
  const base = '/api/v1/boot-resources';
  router.get(base, (ctx) => {
    const page = listBootResources(db, parseQuery(ctx, bootResourceListQuery));
    ctx.body = { items: page.items.map(view), next: page.next };
  });
  router.get(`${base}/:id`, (ctx) => {
    ctx.body = view(requireBootResource(db, intId(ctx.params.id)));
  });
  const openapi = {
    [base]: {
      get: one({
        summary: 'List boot resources',
        query: bootResourceListQuery,
        response: pageSchema(resourceSchema),
      }),
    },
    [`${base}/{id}`]: {
      get: one({
        summary: 'Show a boot resource',
        pathParams: ['id'],
        response: resourceSchema,
        errors: [404],
      }),
    },
  };
  return { router, openapi };
}
