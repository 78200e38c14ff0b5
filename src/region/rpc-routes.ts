import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { Context } from 'koa';
import { KilnError, NotFoundError } from '../lib/errors.js';
import { Identify } from '../rpc/commands/index.js';
import type { DiscoveryDocument, Eventloops } from '../rpc/discovery.js';
import { RpcCodes } from '../rpc/errors.js';
import { getRack, listRacks, type Rack } from '../storage/racks.js';
import { listRegionWorkers } from '../storage/region-workers.js';
import { HttpError } from './http/errors.js';
import { operation } from './http/openapi.js';
import type { RoutePlugin } from './http/plugin.js';
import type { RegionRpcServer } from './rpc-server.js';

export interface RpcRoutesOptions {
  db: Database.Database;
  /** This worker's RPC server (null when its port could not be bound), for region → rack calls. */
  rpc?: () => RegionRpcServer | null;
  workerId?: string;
  /** Workers whose heartbeat is older than this are not listed. */
  workerTtlMs: number;
  now?: () => number;
}

function isWildcard(host: string): boolean {
  return host === '::' || host === '0.0.0.0' || host === '';
}

function plainAddress(a: string | undefined): string | undefined {
  if (!a) return undefined;
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The /rpc answer. Wildcard RPC binds are reported at the address this request arrived on. */
export function discoveryDocument(
  db: Database.Database,
  cutoffMs: number,
  localAddress?: string,
): DiscoveryDocument {
  const workers = listRegionWorkers(db, cutoffMs);
  if (workers.length === 0) return { eventloops: null };
  const local = plainAddress(localAddress) ?? '127.0.0.1';
  const eventloops: Eventloops = {};
  for (const w of workers) {
    eventloops[w.id] = w.rpc_addresses.map(([h, p]) => [isWildcard(h) ? local : h, p]);
  }
  return { eventloops };
}

function rackView(r: Rack) {
  return {
    /** The number subnets refer to in `rack_id`. */
    id: r.id,
    system_id: r.system_id,
    name: r.name,
    hostname: r.hostname,
    version: r.version,
    interfaces: r.interfaces,
    last_seen: r.last_seen,
    created_at: r.created_at,
    updated_at: r.updated_at,
    connected: r.connections.length > 0,
    connections: r.connections.map((c) => ({
      worker: c.worker_id,
      remote_address: c.remote_address,
      connected_at: c.connected_at,
    })),
  };
}

const RackSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer', description: 'What subnets refer to as rack_id' },
    system_id: { type: 'string' },
    name: { type: 'string' },
    hostname: { type: 'string' },
    version: { type: 'string' },
    interfaces: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          mac: { type: ['string', 'null'] },
          addresses: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    last_seen: { type: ['string', 'null'], format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    connected: { type: 'boolean' },
    connections: {
      type: 'array',
      description: 'Live RPC connections, one per region worker when the rack is fully connected.',
      items: {
        type: 'object',
        properties: {
          worker: { type: 'string', description: 'Region worker, as /rpc lists it ("<host>:pid=<pid>").' },
          remote_address: { type: 'string' },
          connected_at: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
};

/** `/rpc` discovery (public) and `/api/v1/racks` (API key). */
export function rpcRoutes(opts: RpcRoutesOptions): RoutePlugin {
  const { db } = opts;
  const now = opts.now ?? Date.now;
  const router = new Router();
  const discovery = (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = discoveryDocument(db, now() - opts.workerTtlMs, ctx.req.socket.localAddress);
  };
  router.get('/rpc', discovery);
  router.get('/rpc/', discovery);
  router.get('/api/v1/racks', (ctx) => {
    ctx.body = { items: listRacks(db).map(rackView), next: null };
  });
  router.get('/api/v1/racks/:id', (ctx) => {
    const id = ctx.params.id ?? '';
    if (!/^[a-z0-9-]{1,64}$/.test(id)) throw new NotFoundError(`rack ${id.slice(0, 64)} not found`);
    ctx.body = rackView(getRack(db, id));
  });
  // Connectivity check from whichever worker takes this request to the rack (Identify over RPC).
  router.post('/api/v1/racks/:id/identify', async (ctx) => {
    const id = ctx.params.id ?? '';
    if (!/^[a-z0-9-]{1,64}$/.test(id)) throw new NotFoundError(`rack ${id.slice(0, 64)} not found`);
    const rack = getRack(db, id);
    const server = opts.rpc?.() ?? null;
    if (!server) throw new HttpError(503, RpcCodes.notConnected, 'this region worker has no RPC server');
    const started = Date.now();
    let answer: Awaited<ReturnType<typeof server.callRack<typeof Identify>>>;
    try {
      answer = await server.callRack(rack.system_id, Identify, {}, { timeout: 5000 });
    } catch (err) {
      if (err instanceof KilnError) throw new HttpError(503, err.code, err.message);
      throw err;
    }
    ctx.body = { worker: opts.workerId ?? null, rack: answer, round_trip_ms: Date.now() - started };
  });
  return {
    router,
    openapi: {
      '/api/v1/racks': {
        get: operation({
          summary: 'Racks with their RPC connections per region worker and last-seen time',
          tag: 'racks',
          response: {
            type: 'object',
            properties: { items: { type: 'array', items: RackSchema }, next: { type: ['string', 'null'] } },
          },
        }),
      },
      '/api/v1/racks/{id}/identify': {
        post: operation({
          summary: 'Ask the rack who it is over RPC, from the region worker that takes the request',
          tag: 'racks',
          pathParams: ['id'],
          response: {
            type: 'object',
            properties: {
              worker: { type: ['string', 'null'] },
              rack: {
                type: 'object',
                properties: {
                  system_id: { type: ['string', 'null'] },
                  hostname: { type: 'string' },
                  version: { type: 'string' },
                },
              },
              round_trip_ms: { type: 'number' },
            },
          },
          errors: [404, 503],
        }),
      },
      '/api/v1/racks/{id}': {
        get: operation({
          summary: 'One rack by system id',
          tag: 'racks',
          pathParams: ['id'],
          response: RackSchema,
          errors: [404],
        }),
      },
    },
  };
}
