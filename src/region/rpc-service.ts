import type Database from 'better-sqlite3';
import type { Logger } from '../lib/logger.js';
import { Ping, RegisterRack, SendEvent } from '../rpc/commands/index.js';
import { HandlerRegistry } from '../rpc/handlers.js';
import { appendEvent } from '../storage/events.js';
import { findMachineByMac, getMachine } from '../storage/machines.js';
import { registerRack, touchRack } from '../storage/racks.js';
import { addRackConnection } from '../storage/region-workers.js';
import { rackHttpToken } from './rack-token.js';
import type { RackPeer } from './rpc-server.js';

export interface RegionRpcServiceOptions {
  db: Database.Database;
  secret: Buffer;
  workerId: string;
  logger: Logger;
  now?: () => number;
}

/**
 * The handlers every region worker serves itself. Other region modules add theirs to the same
 * registry (see region/modules.ts): `handlers.register(GetBootConfig, fn)`.
 */
export function createRegionHandlers(opts: RegionRpcServiceOptions): HandlerRegistry {
  const { db, secret, workerId } = opts;
  const now = opts.now ?? Date.now;
  const handlers = new HandlerRegistry('region');

  handlers.register(RegisterRack, (args, ctx) => {
    const peer = ctx.peer as RackPeer;
    const rack = registerRack(db, args, now());
    peer.rack_id = rack.id;
    peer.system_id = rack.system_id;
    addRackConnection(
      db,
      { id: peer.connection_id, worker_id: workerId, rack_id: rack.id, remote_address: peer.remote_address },
      now(),
    );
    ctx.logger.info({ system_id: rack.system_id, hostname: rack.hostname }, 'rack registered');
    return {
      system_id: rack.system_id,
      http_token: rackHttpToken(secret, rack.system_id),
      worker_id: workerId,
    };
  });

  // Pings arrive every few seconds per connection: record last-seen at most once per 5 s per rack.
  const lastTouch = new Map<number, number>();
  handlers.register(Ping, (args, ctx) => {
    const rackId = (ctx.peer as RackPeer).rack_id;
    const t = now();
    if (rackId !== undefined && t - (lastTouch.get(rackId) ?? 0) >= 5000) {
      lastTouch.set(rackId, t);
      touchRack(db, rackId, t);
    }
    return args.echo === undefined ? { time: t } : { echo: args.echo, time: t };
  });

  handlers.register(SendEvent, (args) => {
    const machine =
      args.system_id !== undefined ? getMachine(db, args.system_id) : findMachineByMac(db, args.mac!);
    if (!machine) return { recorded: false };
    const at = typeof args.data?.at === 'string' ? args.data.at : undefined;
    appendEvent(db, machine.id, { type: args.type, level: args.level, text: args.text, data: args.data, at });
    return { recorded: true };
  });

  return handlers;
}
