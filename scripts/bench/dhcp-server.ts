/**
 * kiln's DHCP service alone, for scripts/bench/dhcp.sh: serves the subnet given on the command line
 * in the current network namespace until SIGTERM. argv: <data_dir> <cidr> <range start> <range end>.
 */
import { createLogger } from '../../src/lib/logger.js';
import { DhcpService } from '../../src/rack/dhcp-service.js';

const [dataDir, cidr, start, end] = process.argv.slice(2) as [string, string, string, string];
const service = new DhcpService({
  dataDir,
  port: 67,
  proxyPort: null,
  allowedInterfaces: [],
  httpPort: 5248,
  logger: createLogger({ level: 'warn', name: 'bench-dhcp', destination: process.stderr }),
  probeTimeoutMs: 0,
});
await service.apply({
  subnets: [
    {
      id: 1,
      cidr,
      proxy_mode: false,
      gateway: null,
      dns_servers: [],
      lease_seconds: 3600,
      dynamic_ranges: [{ start, end }],
      reservations: [],
    },
  ],
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  service.stop().then(() => process.exit(0));
});
