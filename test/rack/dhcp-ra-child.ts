/**
 * Runs the rack's DhcpService with rack.dhcp.ipv6_ra in the current network namespace (tests start
 * it with `ip netns exec`). argv[2] is JSON { dataDir, config, ipv6Ra }. Prints JSON lines on
 * stdout: {"ready":…,"ra":[ifnames]}, then for each config line on stdin {"applied":true,"ra":[…]}.
 * Logs (JSON, debug) go to stderr. KILN_NO_NATIVE=1 runs it without the addon.
 */
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/lib/logger.js';
import * as native from '../../src/native/index.js';
import { DhcpService } from '../../src/rack/dhcp-service.js';

const args = JSON.parse(process.argv[2]!) as { dataDir: string; config: unknown; ipv6Ra: boolean };
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

const service = new DhcpService({
  dataDir: args.dataDir,
  port: 67,
  proxyPort: null,
  allowedInterfaces: [],
  httpPort: 5248,
  logger: createLogger({ level: 'debug', name: 'dhcp-ra-child', destination: process.stderr }),
  native: native.nativeStatus().available ? native : null,
  ipv6Ra: args.ipv6Ra,
  probeTimeoutMs: 0,
});
await service.apply(args.config as never);
out({ ready: true, ports: service.ports(), ra: service.raInterfaces() });

createInterface({ input: process.stdin }).on('line', (line) => {
  service.apply(JSON.parse(line)).then(
    () => out({ applied: true, ports: service.ports(), ra: service.raInterfaces() }),
    (err: unknown) => out({ error: String(err) }),
  );
});
process.on('SIGTERM', () => {
  service.stop().then(() => {
    out({ stopped: true, ra: service.raInterfaces(), openSockets: native.openIcmp6SocketCount() });
    process.exit(0);
  });
});
