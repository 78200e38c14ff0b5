import type Database from 'better-sqlite3';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { DhcpConfig } from '../rpc/commands/dhcp.js';
import { DhcpConfigChanged, GetDhcpConfig, UpdateLeases } from '../rpc/commands/dhcp.js';
import type { CallContext, HandlerRegistry } from '../rpc/handlers.js';
import { storeLeaseReports } from '../storage/dhcp-records.js';
import { reservationsForDhcp } from '../storage/dhcp-reservations.js';
import { getSubnetDhcpSettings } from '../storage/dhcp-settings.js';
import { managedSubnetsForRack } from '../storage/subnets.js';
import { leaseRoutes } from './http/leases.js';
import { subnetDhcpRoutes } from './http/subnet-dhcp.js';
import type { RegionModule } from './modules.js';
import type { RackPeer, RegionRpcServer } from './rpc-server.js';

/** Nothing but a registered rack gets a DHCP configuration: it names the subnets to serve. */
export const RACK_NOT_REGISTERED = 'KILN_ERR_RACK_NOT_REGISTERED';

/**
 * What one rack serves: the subnets that are managed and assigned to it (DESIGN.md: nothing else
 * is ever sent, so a rack never answers on a network it was not told to serve), each with its
 * range, gateway, DNS, domain, lease time, proxy mode and pinned addresses.
 */
export function dhcpConfigForRack(db: Database.Database, rackId: number): DhcpConfig {
  return {
    subnets: managedSubnetsForRack(db, rackId).map((s) => {
      const settings = getSubnetDhcpSettings(db, s.id);
      return {
        id: s.id,
        cidr: s.cidr,
        proxy_mode: s.proxy_mode,
        gateway: s.gateway,
        dns_servers: s.dns_servers,
        domain: settings.domain,
        lease_seconds: settings.lease_seconds,
        dynamic_ranges: s.dynamic_range ? [s.dynamic_range] : [],
        reservations: reservationsForDhcp(db, s.id),
      };
    }),
  };
}

/**
 * The calling rack's id: the connection's registration (set by RegisterRack on this very link),
 * else the system id the rack named, if the region knows it. The link is authenticated by the
 * shared secret either way; the registration is preferred because it cannot be mistyped.
 */
function callingRack(db: Database.Database, ctx: CallContext, systemId: string | null | undefined): number {
  const peer = ctx.peer as RackPeer;
  if (peer.rack_id !== undefined) return peer.rack_id;
  if (systemId) {
    const row = db.prepare('SELECT id FROM racks WHERE system_id = ?').get(systemId) as
      | { id: number }
      | undefined;
    if (row) return row.id;
  }
  throw new KilnError(RACK_NOT_REGISTERED, 'this connection has not registered a rack (RegisterRack) yet', {
    rack_system_id: systemId ?? null,
  });
}

export function registerDhcpHandlers(
  handlers: HandlerRegistry,
  opts: { db: Database.Database; logger: Logger },
) {
  const { db, logger } = opts;
  handlers.register(GetDhcpConfig, (args, ctx) =>
    dhcpConfigForRack(db, callingRack(db, ctx, args.rack_system_id)),
  );
  handlers.register(UpdateLeases, (args, ctx) => {
    const rackId = callingRack(db, ctx, args.rack_system_id);
    const r = storeLeaseReports(db, rackId, args.leases);
    // A record the region refuses (subnet deleted since, address moved out of a changed CIDR) is
    // still acknowledged: resending it would never succeed.
    if (r.rejected > 0) {
      logger.warn(
        { rack_id: rackId, rejected: r.rejected },
        'dhcp: lease reports for unknown subnets or addresses refused',
      );
    }
    logger.debug({ rack_id: rackId, ...r }, 'dhcp: leases stored');
    return { stored: r.stored, discoveries: r.discoveries };
  });
}

/**
 * Tells these racks their DHCP configuration changed, over this worker's own connections (every
 * rack holds one to every worker). Does not wait: the API answer does not depend on a rack being
 * up, and a rack that misses the notice picks the change up on its next poll or reconnection.
 */
export function notifyRacks(
  rpc: RegionRpcServer | null,
  db: Database.Database,
  rackIds: Iterable<number>,
  logger: Logger,
): void {
  if (!rpc) return;
  const lookup = db.prepare('SELECT system_id FROM racks WHERE id = ?');
  for (const id of new Set(rackIds)) {
    const row = lookup.get(id) as { system_id: string } | undefined;
    if (!row) continue;
    rpc.callRack(row.system_id, DhcpConfigChanged, {}, { timeout: 10_000 }).catch((err: unknown) => {
      logger.info(
        { rack: row.system_id, err: (err as Error).message },
        'dhcp: could not tell the rack its configuration changed',
      );
    });
  }
}

/**
 * The region's DHCP module, run in every worker: GetDhcpConfig and UpdateLeases for racks, the
 * leases/discoveries/reservations API, and DhcpConfigChanged pushed to the racks a subnet or
 * reservation change touches.
 */
export const dhcpModule: RegionModule = (ctx) => {
  const logger = ctx.logger.child({ module: 'dhcp' });
  registerDhcpHandlers(ctx.handlers, { db: ctx.db, logger });
  const changed = (rackIds: Iterable<number>) => notifyRacks(ctx.rpc(), ctx.db, rackIds, logger);
  ctx.plugins.push(leaseRoutes({ db: ctx.db }), subnetDhcpRoutes({ db: ctx.db, onRacksChanged: changed }));
};
