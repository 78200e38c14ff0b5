import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { createReservation, deleteReservation, listReservations } from '../../storage/dhcp-reservations.js';
import {
  getSubnetDhcpSettings,
  MAX_LEASE_SECONDS,
  MIN_LEASE_SECONDS,
  setSubnetDhcpSettings,
} from '../../storage/dhcp-settings.js';
import { requireSubnet } from '../../storage/subnets.js';
import { type OperationSpec, operation, pageSchema } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { intId, pageQuery } from './schemas.js';
import { parseBody, parseQuery } from './validate.js';

export const reservationBody = z.strictObject({
  mac: z.string().max(32).describe('The MAC to pin'),
  ip: z.string().max(15).describe('A host address of the subnet, outside its dynamic range'),
  hostname: z
    .string()
    .max(63)
    .nullable()
    .describe("Sent as option 12; default: the machine's hostname")
    .optional(),
});
export const reservationListQuery = z.strictObject({ ...pageQuery });
export const dhcpSettingsBody = z.strictObject({
  domain: z.string().max(253).nullable().describe('Domain name (option 15)').optional(),
  lease_seconds: z.number().int().min(MIN_LEASE_SECONDS).max(MAX_LEASE_SECONDS).optional(),
});

const reservationSchema = {
  type: 'object',
  properties: {
    subnet_id: { type: 'integer' },
    mac: { type: 'string' },
    ip: { type: 'string' },
    hostname: { type: ['string', 'null'] },
    machine: { type: ['string', 'null'], description: 'system_id of the machine owning the MAC' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
};
const settingsSchema = {
  type: 'object',
  properties: { domain: { type: ['string', 'null'] }, lease_seconds: { type: 'integer' } },
};

const one = (spec: Omit<OperationSpec, 'tag'>) => operation({ tag: 'dhcp', ...spec });

/** The rack serving a subnet's DHCP, or null when the subnet is not served (unmanaged or unassigned). */
function servingRack(db: Database.Database, subnetId: number): number | null {
  const row = db.prepare('SELECT managed, rack_id FROM subnets WHERE id = ?').get(subnetId) as
    | { managed: number; rack_id: number | null }
    | undefined;
  return row && row.managed === 1 ? row.rack_id : null;
}

/** Racks serving subnets that pin one of these MACs (their reservation hostnames follow the machine). */
function racksPinning(db: Database.Database, macs: string[]): number[] {
  if (macs.length === 0) return [];
  const rows = db
    .prepare(
      `SELECT DISTINCT s.rack_id FROM dhcp_reservations r JOIN subnets s ON s.id = r.subnet_id
       WHERE s.managed = 1 AND s.rack_id IS NOT NULL AND r.mac IN (${macs.map(() => '?').join(',')})`,
    )
    // A machine has at most 64 interfaces, so `macs` stays small.
    .all(...macs) as Array<{ rack_id: number }>;
  return rows.map((r) => r.rack_id);
}

function macsOf(db: Database.Database, systemId: string | undefined): string[] {
  if (systemId === undefined) return [];
  return (
    db
      .prepare('SELECT i.mac FROM interfaces i JOIN machines m ON m.id = i.machine_id WHERE m.system_id = ?')
      .all(systemId) as Array<{ mac: string }>
  ).map((r) => r.mac);
}

/**
 * Per-subnet DHCP: reservations (`/api/v1/subnets/{id}/reservations`), the domain and lease time
 * (`/api/v1/subnets/{id}/dhcp`), and the watch that tells racks about changes. The subnet and
 * machine routes belong to the inventory; these routes see their writes pass by (before and after,
 * so a subnet moved from one rack to another tells both) and call `onRacksChanged` with the racks
 * whose configuration may differ now.
 */
export function subnetDhcpRoutes(opts: {
  db: Database.Database;
  onRacksChanged: (rackIds: number[]) => void;
}): RoutePlugin {
  const { db, onRacksChanged } = opts;
  const router = new Router();
  const base = '/api/v1/subnets/:id';

  const tell = (ids: Array<number | null>) => {
    const racks = ids.filter((x): x is number => x !== null);
    if (racks.length > 0) onRacksChanged(racks);
  };

  router.get(`${base}/reservations`, (ctx) => {
    ctx.body = listReservations(db, intId(ctx.params.id), parseQuery(ctx, reservationListQuery));
  });
  router.post(`${base}/reservations`, async (ctx) => {
    const id = intId(ctx.params.id);
    const r = createReservation(db, id, await parseBody(ctx, reservationBody));
    ctx.status = 201;
    ctx.set('Location', `/api/v1/subnets/${id}/reservations/${r.mac}`);
    ctx.body = r;
    tell([servingRack(db, id)]);
  });
  router.delete(`${base}/reservations/:mac`, (ctx) => {
    const id = intId(ctx.params.id);
    deleteReservation(db, id, ctx.params.mac ?? '');
    ctx.status = 204;
    tell([servingRack(db, id)]);
  });
  router.get(`${base}/dhcp`, (ctx) => {
    const id = intId(ctx.params.id);
    requireSubnet(db, id);
    ctx.body = getSubnetDhcpSettings(db, id);
  });
  router.patch(`${base}/dhcp`, async (ctx) => {
    const id = intId(ctx.params.id);
    ctx.body = setSubnetDhcpSettings(db, id, await parseBody(ctx, dhcpSettingsBody));
    tell([servingRack(db, id)]);
  });

  // Watches on the inventory's own routes (described by their OpenAPI fragments, not here).
  const watchSubnet = async (ctx: Context, next: Next) => {
    const id = ctx.params.id !== undefined ? intId(ctx.params.id) : undefined;
    const before = id !== undefined ? servingRack(db, id) : null;
    await next();
    if (ctx.status >= 300) return;
    const after = id !== undefined ? servingRack(db, id) : servingRack(db, (ctx.body as { id: number }).id);
    tell([before, after]);
  };
  router.post('/api/v1/subnets', watchSubnet);
  router.patch('/api/v1/subnets/:id', watchSubnet);
  router.delete('/api/v1/subnets/:id', watchSubnet);
  const watchMachine = async (ctx: Context, next: Next) => {
    const before = macsOf(db, ctx.params.system_id);
    await next();
    if (ctx.status >= 300) return;
    const after = macsOf(
      db,
      ctx.params.system_id ?? (ctx.body as { system_id?: string } | undefined)?.system_id,
    );
    tell(racksPinning(db, [...new Set([...before, ...after])]));
  };
  router.post('/api/v1/machines', watchMachine);
  router.patch('/api/v1/machines/:system_id', watchMachine);
  router.delete('/api/v1/machines/:system_id', watchMachine);

  const id = ['id'];
  const openapi = {
    '/api/v1/subnets/{id}/reservations': {
      get: one({
        summary: "A subnet's reservations (MACs pinned to addresses), in address order",
        pathParams: id,
        query: reservationListQuery,
        response: pageSchema(reservationSchema),
        errors: [404],
      }),
      post: one({
        summary: 'Pin a MAC to an address: DHCP gives it that address and nobody else',
        pathParams: id,
        body: reservationBody,
        status: 201,
        response: reservationSchema,
        errors: [404, 409],
      }),
    },
    '/api/v1/subnets/{id}/reservations/{mac}': {
      delete: one({ summary: 'Remove a reservation', pathParams: ['id', 'mac'], status: 204, errors: [404] }),
    },
    '/api/v1/subnets/{id}/dhcp': {
      get: one({
        summary: "A subnet's DHCP settings (domain, lease time)",
        pathParams: id,
        response: settingsSchema,
        errors: [404],
      }),
      patch: one({
        summary: "Change a subnet's DHCP settings",
        pathParams: id,
        body: dhcpSettingsBody,
        response: settingsSchema,
        errors: [404],
      }),
    },
  };
  return { router, openapi };
}
