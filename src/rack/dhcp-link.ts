import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { DhcpConfigChanged, GetDhcpConfig, UpdateLeases } from '../rpc/commands/dhcp.js';
import type { DhcpService } from './dhcp-service.js';
import type { RegionClient } from './region-client.js';

export interface DhcpLink {
  stop(): void;
}

/**
 * Keeps the rack's DHCP service in step with the region: the configuration is fetched at every
 * (re)connection, when the region announces a change, and on a slow poll (a missed notice must not
 * leave a subnet unserved); lease changes go up in batches. Until the first configuration arrives,
 * the service serves nothing (DESIGN.md: never disturb a network kiln was not told to serve).
 */
export function linkDhcpToRegion(opts: {
  dhcp: DhcpService;
  region: Pick<RegionClient, 'call' | 'handlers' | 'on' | 'off' | 'systemId'>;
  logger: Logger;
  pollMs?: number;
  reportMs?: number;
}): DhcpLink {
  const { dhcp, region, logger } = opts;
  let stopped = false;
  let refreshing: Promise<void> | null = null;
  let again = false;

  const refresh = (): Promise<void> => {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        try {
          const cfg = await region.call(GetDhcpConfig, {}, { timeout: 15_000 });
          if (!stopped) await dhcp.apply(cfg);
        } catch (err) {
          logger.warn({ err: describeError(err) }, 'dhcp: could not get the configuration from the region');
        }
      } while (again && !stopped);
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  };

  let reporting = false;
  const report = async (): Promise<void> => {
    if (reporting || stopped) return;
    reporting = true;
    try {
      for (;;) {
        const leases = dhcp.pendingLeaseReports(1000);
        if (leases.length === 0) break;
        await region.call(UpdateLeases, { leases }, { timeout: 15_000 });
        dhcp.leasesReported(leases);
        if (leases.length < 1000) break;
      }
    } catch (err) {
      logger.debug({ err: describeError(err) }, 'dhcp: lease report deferred');
    } finally {
      reporting = false;
    }
  };

  region.handlers.register(DhcpConfigChanged, () => {
    void refresh();
    return { ok: true };
  });
  const onConnected = () => void refresh();
  region.on('connected', onConnected);
  const poll = setInterval(() => void refresh(), opts.pollMs ?? 60_000);
  const reporter = setInterval(() => void report(), opts.reportMs ?? 2_000);
  poll.unref();
  reporter.unref();

  return {
    stop() {
      stopped = true;
      clearInterval(poll);
      clearInterval(reporter);
      region.off('connected', onConnected);
    },
  };
}
