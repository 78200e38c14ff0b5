import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { describeError } from '../lib/errors.js';
import { intToIp, ipToInt, isIpv4 } from '../lib/ipv4.js';
import type { Logger } from '../lib/logger.js';
import type { Mac } from '../lib/mac.js';
import * as native from '../native/index.js';
import { softwareVersion } from '../rpc/version.js';
import { createRackBooter } from './boot-services.js';
import { startBootServing } from './boot-serving.js';
import type { BootTimeline } from './boot-timeline.js';
import { linkDhcpToRegion } from './dhcp-link.js';
import { DhcpService } from './dhcp-service.js';
import { startRackImages } from './image-service.js';
import { RegionClient } from './region-client.js';
import { readRackSecret } from './secret.js';

/**
 * The rack role: a short composer. Each service lives in its own module; this file starts them in
 * dependency order and stops them in reverse. A service whose port cannot be bound is reported
 * (which port, why, how to fix it) and the others keep running.
 */
export async function startRack(opts: {
  config: Config;
  logger: Logger;
}): Promise<{ stop(): Promise<void> }> {
  const { config, logger } = opts;
  const nativeState = native.configureNative({ enabled: config.native.enabled });
  if (!nativeState.available) {
    logger.warn(
      { reason: nativeState.reason },
      'native addon unavailable: boot files stream through Node, one DHCP interface',
    );
  }
  const stops: Array<() => Promise<void> | void> = [];
  let timeline: BootTimeline | null = null;

  const secretFile = config.rack.secret_file || join(config.data_dir, 'secret');
  const region = new RegionClient({
    regionUrls: config.rack.region_urls,
    secret: readRackSecret(secretFile),
    dataDir: config.data_dir,
    hostname: hostname(),
    name: config.rack.name || null,
    software: softwareVersion(),
    logger: logger.child({ part: 'region-client' }),
  });
  region.start();
  stops.push(() => region.stop());

  const images = startRackImages({ config, logger, region });
  stops.push(() => images.stop());

  // DHCP first so the booter can attribute TFTP hops (by client address) to a MAC.
  let dhcp: DhcpService | null = null;
  if (config.rack.dhcp.enabled) {
    dhcp = new DhcpService({
      dataDir: config.data_dir,
      port: config.rack.dhcp.port,
      proxyPort: config.rack.dhcp.proxy_port,
      allowedInterfaces: config.rack.dhcp.interfaces,
      httpPort: config.rack.http.port,
      ...(config.rack.advertise_address ? { advertiseAddress: config.rack.advertise_address } : {}),
      logger: logger.child({ part: 'dhcp' }),
      native: nativeState.available ? native : null,
      ipv6Ra: config.rack.dhcp.ipv6_ra,
      onEvent: (e) => logger.info({ event: e.type, ...e.data }, e.text),
      // Every ACK is a boot hop (the firmware's, then the booted kernel's); the region adds its own
      // `dhcp.lease` event once per new lease when the lease report arrives.
      onLease: (l) => {
        if (l.state !== 'active') return;
        timeline?.record({
          mac: l.mac,
          type: 'dhcp.ack',
          text: `DHCP ACK ${intToIp(l.ip)}`,
          data: { ip: intToIp(l.ip) },
        });
      },
    });
    const link = linkDhcpToRegion({ dhcp, region, logger: logger.child({ part: 'dhcp-link' }) });
    const service = dhcp;
    stops.push(async () => {
      link.stop();
      await service.stop();
    });
  }
  const leases = dhcp?.leases;
  const macForAddress = (ip: string): Mac | null => {
    if (!leases || !isIpv4(ip)) return null;
    return leases.byIp(ipToInt(ip))?.mac ?? null;
  };

  const booted = createRackBooter({ config, logger, region, images: images.cache, macForAddress });
  const booter = booted.booter;
  timeline = booted.timeline;

  // TFTP and boot HTTP: here, or in rack.workers processes that ask this booter (boot-serving.ts).
  const serving = await startBootServing({ config, logger, booter, native: nativeState, leases });
  stops.push(() => serving.stop());

  return {
    async stop() {
      for (const stop of stops.reverse()) {
        try {
          await stop();
        } catch (err) {
          logger.warn({ err: describeError(err) }, 'rack: error while stopping a service');
        }
      }
    },
  };
}
