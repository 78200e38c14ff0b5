import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { addressesOfMacs, listDiscoveries, listSubnetLeases } from '../../storage/dhcp-records.js';
import { type OperationSpec, operation, pageSchema } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { intId, pageQuery } from './schemas.js';
import { parseQuery } from './validate.js';

export const leaseListQuery = z.strictObject({
  state: z
    .enum(['active', 'expired', 'released', 'declined'])
    .describe('Only leases in this state; `active` leaves out expired ones')
    .optional(),
  ...pageQuery,
});

export const discoveryListQuery = z.strictObject({
  subnet_id: z.coerce.number().int().positive().describe('Only MACs last seen in this subnet').optional(),
  ...pageQuery,
});

const leaseSchema = {
  type: 'object',
  properties: {
    ip: { type: 'string' },
    mac: { type: 'string' },
    state: { type: 'string', enum: ['active', 'expired', 'released', 'declined'] },
    hostname: { type: ['string', 'null'], description: 'What the client sent (option 12)' },
    expires_at: { type: 'string', format: 'date-time' },
    rack: { type: ['string', 'null'], description: 'system_id of the rack that served it' },
    machine: { type: ['string', 'null'], description: 'system_id of the machine owning the MAC' },
    updated_at: { type: 'string', format: 'date-time' },
  },
};

const discoverySchema = {
  type: 'object',
  properties: {
    mac: { type: 'string' },
    ip: { type: 'string', description: 'The address DHCP last gave it' },
    subnet_id: { type: ['integer', 'null'] },
    rack: { type: ['string', 'null'] },
    hostname: { type: ['string', 'null'] },
    first_seen: { type: 'string', format: 'date-time' },
    last_seen: { type: 'string', format: 'date-time' },
  },
};

const one = (spec: Omit<OperationSpec, 'tag'>) => operation({ tag: 'dhcp', ...spec });

interface MachineLike {
  interfaces?: Array<{ mac?: unknown }>;
  ip_addresses?: unknown;
}

/**
 * Adds `ip_addresses` (current leases and pins of the machine's MACs) to machines the machine
 * routes answered with. Done on the way out rather than in the machine repository so the
 * dependency points from DHCP to machines and never back: the inventory knows nothing of leases.
 */
function withAddresses(db: Database.Database) {
  return async (ctx: Context, next: Next) => {
    await next();
    if ((ctx.status !== 200 && ctx.status !== 201) || typeof ctx.body !== 'object' || ctx.body === null)
      return;
    const body = ctx.body as { items?: MachineLike[] } & MachineLike;
    const machines = Array.isArray(body.items) ? body.items : Array.isArray(body.interfaces) ? [body] : [];
    const macs = machines.flatMap((m) =>
      (m.interfaces ?? []).map((i) => i.mac).filter((x) => typeof x === 'string'),
    );
    const byMac = addressesOfMacs(db, macs as string[]);
    for (const m of machines) {
      m.ip_addresses = (m.interfaces ?? []).flatMap((i) =>
        typeof i.mac === 'string' ? (byMac.get(i.mac) ?? []) : [],
      );
    }
  };
}

/**
 * What DHCP saw, for people: `GET /api/v1/subnets/{id}/leases` and `GET /api/v1/discoveries`, and
 * each machine's current addresses in the machine API's answers.
 */
export function leaseRoutes(opts: { db: Database.Database }): RoutePlugin {
  const { db } = opts;
  const router = new Router();
  router.get('/api/v1/subnets/:id/leases', (ctx) => {
    ctx.body = listSubnetLeases(db, intId(ctx.params.id), parseQuery(ctx, leaseListQuery));
  });
  router.get('/api/v1/discoveries', (ctx) => {
    ctx.body = listDiscoveries(db, parseQuery(ctx, discoveryListQuery));
  });
  // Described by the machine routes' own OpenAPI fragment; these only add a field on the way out.
  router.get('/api/v1/machines', withAddresses(db));
  router.post('/api/v1/machines', withAddresses(db));
  router.get('/api/v1/machines/:system_id', withAddresses(db));
  router.patch('/api/v1/machines/:system_id', withAddresses(db));

  const openapi = {
    '/api/v1/subnets/{id}/leases': {
      get: one({
        summary: "A subnet's DHCP leases, in address order, as its rack reported them",
        pathParams: ['id'],
        query: leaseListQuery,
        response: pageSchema(leaseSchema),
        errors: [404],
      }),
    },
    '/api/v1/discoveries': {
      get: one({
        summary: 'MACs DHCP served that no machine owns (yet), in order of discovery',
        query: discoveryListQuery,
        response: pageSchema(discoverySchema),
      }),
    },
  };
  return { router, openapi };
}
