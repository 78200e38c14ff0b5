import Router from '@koa/router';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { listEvents } from '../../storage/events.js';
import {
  createMachine,
  deleteMachine,
  listMachines,
  MACHINE_SORTS,
  MACHINE_STATUSES,
  type Machine,
  maskPowerParameters,
  requireMachine,
  updateMachine,
} from '../../storage/machines.js';
import { type OperationSpec, operation, pageSchema } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { pageQuery } from './schemas.js';
import { parseBody, parseQuery } from './validate.js';

const status = z.enum(MACHINE_STATUSES);
const powerValue = z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]);
const iface = z.strictObject({ name: z.string().max(32).optional(), mac: z.string().max(32) });

const machineFields = {
  hostname: z.string().max(63).describe('Host name label; generated when omitted').optional(),
  architecture: z.string().max(64).describe('e.g. amd64/generic').optional(),
  status: status.optional(),
  description: z.string().max(1000).optional(),
  boot_mac: z.string().max(32).describe('The MAC the machine network-boots from').optional(),
  interfaces: z.array(iface).max(64).optional(),
  power_type: z.string().max(64).describe('manual, ipmi, redfish, qemu, webhook...').optional(),
  power_parameters: z
    .record(z.string().max(64), powerValue)
    .describe('Driver parameters; secret values are returned masked')
    .optional(),
  zone: z.string().max(64).optional(),
  pool: z.string().max(64).optional(),
  tags: z.array(z.string().max(64)).max(100).optional(),
  hardware: z.record(z.string(), z.unknown()).nullable().describe('Hardware inventory (JSON)').optional(),
};

export const machineCreateBody = z.strictObject(machineFields);
export const machineUpdateBody = z.strictObject(machineFields);

export const machineListQuery = z.strictObject({
  status: z
    .string()
    .max(1000)
    .describe(`One status or several separated by commas: ${MACHINE_STATUSES.join(', ')}`)
    .optional(),
  hostname: z.string().max(255).optional(),
  mac: z.string().max(32).describe('Any interface MAC').optional(),
  tag: z.string().max(64).optional(),
  zone: z.string().max(64).optional(),
  pool: z.string().max(64).optional(),
  architecture: z.string().max(64).optional(),
  sort: z
    .string()
    .max(32)
    .describe(`One of ${MACHINE_SORTS.join(', ')}; prefix - for descending (default id)`)
    .optional(),
  ...pageQuery,
});

export const eventListQuery = z.strictObject({
  order: z.enum(['asc', 'desc']).describe('asc: oldest first (default)').optional(),
  level: z.enum(['debug', 'info', 'warning', 'error']).optional(),
  type: z.string().max(64).optional(),
  ...pageQuery,
});

/** What the API shows of a machine: no internal row id, power secrets masked. */
export function machineView(m: Machine): Omit<Machine, 'id'> {
  const { id: _id, ...rest } = m;
  return { ...rest, power_parameters: maskPowerParameters(m.power_parameters) };
}

const machineSchema = {
  type: 'object',
  properties: {
    system_id: { type: 'string', examples: ['4y3h7n'] },
    hostname: { type: 'string' },
    architecture: { type: 'string' },
    status: { type: 'string', enum: [...MACHINE_STATUSES] },
    description: { type: 'string' },
    boot_mac: { type: ['string', 'null'] },
    interfaces: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, mac: { type: 'string' }, is_boot: { type: 'boolean' } },
      },
    },
    power_type: { type: 'string' },
    power_parameters: { type: 'object' },
    zone: { type: 'string' },
    pool: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    // Added to the answers by the DHCP routes (region/http/leases.ts); documented here, with the machine.
    ip_addresses: {
      type: 'array',
      description: "Current DHCP leases and reservations of the machine's MACs",
      items: {
        type: 'object',
        properties: {
          mac: { type: 'string' },
          ip: { type: 'string' },
          subnet_id: { type: 'integer' },
          source: { type: 'string', enum: ['dhcp', 'reserved'] },
          expires_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
    },
    hardware: { type: ['object', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
};

const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    type: { type: 'string' },
    level: { type: 'string' },
    text: { type: 'string' },
    data: { type: ['object', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
  },
};

const one = (spec: Omit<OperationSpec, 'tag'>) => operation({ tag: 'machines', ...spec });

export function machineRoutes(db: Database.Database): RoutePlugin {
  const router = new Router();
  const base = '/api/v1/machines';

  router.get(base, (ctx) => {
    const q = parseQuery(ctx, machineListQuery);
    const page = listMachines(db, {
      ...q,
      status: q.status?.split(',').map((s) => s.trim()) as Machine['status'][] | undefined,
    });
    ctx.body = { items: page.items.map(machineView), next: page.next };
  });

  router.post(base, async (ctx) => {
    const body = await parseBody(ctx, machineCreateBody);
    const m = createMachine(db, body);
    ctx.status = 201;
    ctx.set('Location', `/api/v1/machines/${m.system_id}`);
    ctx.body = machineView(m);
  });

  router.get(`${base}/:system_id`, (ctx) => {
    ctx.body = machineView(requireMachine(db, ctx.params.system_id!));
  });

  router.patch(`${base}/:system_id`, async (ctx) => {
    const body = await parseBody(ctx, machineUpdateBody);
    ctx.body = machineView(updateMachine(db, ctx.params.system_id!, body));
  });

  router.delete(`${base}/:system_id`, (ctx) => {
    deleteMachine(db, ctx.params.system_id!);
    ctx.status = 204;
  });

  router.get(`${base}/:system_id/events`, (ctx) => {
    const q = parseQuery(ctx, eventListQuery);
    const m = requireMachine(db, ctx.params.system_id!);
    ctx.body = listEvents(db, m.id, q);
  });

  const sid = ['system_id'];
  const openapi = {
    '/api/v1/machines': {
      get: one({
        summary: 'List machines (filters, sorting, cursor pagination)',
        query: machineListQuery,
        response: pageSchema(machineSchema),
      }),
      post: one({
        summary: 'Create a machine',
        body: machineCreateBody,
        status: 201,
        response: machineSchema,
        errors: [409],
      }),
    },
    '/api/v1/machines/{system_id}': {
      get: one({ summary: 'Show a machine', pathParams: sid, response: machineSchema, errors: [404] }),
      patch: one({
        summary: 'Change a machine (fields given replace the stored ones)',
        pathParams: sid,
        body: machineUpdateBody,
        response: machineSchema,
        errors: [404, 409],
      }),
      delete: one({
        summary: 'Delete a machine with its interfaces and events',
        pathParams: sid,
        status: 204,
        errors: [404],
      }),
    },
    '/api/v1/machines/{system_id}/events': {
      get: one({
        summary: "A machine's event log (boot timeline), paginated",
        pathParams: sid,
        query: eventListQuery,
        response: pageSchema(eventSchema),
        errors: [404],
      }),
    },
  };
  return { router, openapi };
}
