import Router from '@koa/router';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import {
  createSubnet,
  deleteSubnet,
  listSubnets,
  requireSubnet,
  updateSubnet,
} from '../../storage/subnets.js';
import { type OperationSpec, operation, pageSchema } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { intId, pageQuery, queryBool } from './schemas.js';
import { parseBody, parseQuery } from './validate.js';

const ip = z.string().max(15);
const range = z.strictObject({ start: ip, end: ip });

const subnetFields = {
  name: z.string().max(64).describe('Defaults to the CIDR').optional(),
  gateway: ip.nullable().optional(),
  dns_servers: z.array(ip).max(8).optional(),
  dynamic_range: range.nullable().describe('Addresses DHCP hands out; inside the subnet').optional(),
  managed: z.boolean().describe('kiln serves DHCP here (needs rack_id)').optional(),
  proxy_mode: z
    .boolean()
    .describe('Another server gives addresses; kiln answers only the boot part')
    .optional(),
  rack_id: z.number().int().positive().nullable().describe('The rack that serves this subnet').optional(),
};

export const subnetCreateBody = z.strictObject({
  cidr: z.string().max(18).describe('e.g. 10.0.0.0/24'),
  ...subnetFields,
});
export const subnetUpdateBody = z.strictObject({ cidr: z.string().max(18).optional(), ...subnetFields });
export const subnetListQuery = z.strictObject({
  managed: queryBool.optional(),
  rack_id: z.coerce.number().int().positive().optional(),
  ...pageQuery,
});

const subnetSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    cidr: { type: 'string' },
    gateway: { type: ['string', 'null'] },
    dns_servers: { type: 'array', items: { type: 'string' } },
    dynamic_range: {
      type: ['object', 'null'],
      properties: { start: { type: 'string' }, end: { type: 'string' } },
    },
    managed: { type: 'boolean' },
    proxy_mode: { type: 'boolean' },
    rack_id: { type: ['integer', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
};

const one = (spec: Omit<OperationSpec, 'tag'>) => operation({ tag: 'subnets', ...spec });

export function subnetRoutes(db: Database.Database): RoutePlugin {
  const router = new Router();
  const base = '/api/v1/subnets';
  router.get(base, (ctx) => {
    ctx.body = listSubnets(db, parseQuery(ctx, subnetListQuery));
  });
  router.post(base, async (ctx) => {
    const s = createSubnet(db, await parseBody(ctx, subnetCreateBody));
    ctx.status = 201;
    ctx.set('Location', `${base}/${s.id}`);
    ctx.body = s;
  });
  router.get(`${base}/:id`, (ctx) => {
    ctx.body = requireSubnet(db, intId(ctx.params.id));
  });
  router.patch(`${base}/:id`, async (ctx) => {
    const body = await parseBody(ctx, subnetUpdateBody);
    ctx.body = updateSubnet(db, intId(ctx.params.id), body);
  });
  router.delete(`${base}/:id`, (ctx) => {
    deleteSubnet(db, intId(ctx.params.id));
    ctx.status = 204;
  });

  const id = ['id'];
  const openapi = {
    [base]: {
      get: one({ summary: 'List subnets', query: subnetListQuery, response: pageSchema(subnetSchema) }),
      post: one({
        summary: 'Create a subnet',
        body: subnetCreateBody,
        status: 201,
        response: subnetSchema,
        errors: [409],
      }),
    },
    [`${base}/{id}`]: {
      get: one({ summary: 'Show a subnet', pathParams: id, response: subnetSchema, errors: [404] }),
      patch: one({
        summary: 'Change a subnet (the result is re-checked as a whole)',
        pathParams: id,
        body: subnetUpdateBody,
        response: subnetSchema,
        errors: [404, 409],
      }),
      delete: one({ summary: 'Delete a subnet', pathParams: id, status: 204, errors: [404] }),
    },
  };
  return { router, openapi };
}
