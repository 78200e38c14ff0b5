/**
 * Runs the rack's DHCP service in the current network namespace for the DHCP integration tests
 * (they start it with `ip netns exec`). argv[2] is JSON: { dataDir, config, probeTimeoutMs }.
 * Prints JSON lines on stdout: {"ready":…}, {"event":…}, {"applied":true}; reads JSON configs, one per
 * line, on stdin and applies them. Exits cleanly on SIGTERM.
 */
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/lib/logger.js';
import type { DhcpNative } from '../../src/net/dhcp-server.js';
import { DhcpService } from '../../src/rack/dhcp-service.js';

const args = JSON.parse(process.argv[2]!) as {
  dataDir: string;
  config: unknown;
  probeTimeoutMs?: number;
  interfaces?: string[];
};
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

let native: DhcpNative | null = null;
try {
  const mod = await import('../../src/native/index.js');
  if (mod.nativeStatus().available) native = mod;
} catch {
  native = null;
}

const service = new DhcpService({
  dataDir: args.dataDir,
  port: 67,
  proxyPort: 4011,
  allowedInterfaces: args.interfaces ?? [],
  httpPort: 5248,
  logger: createLogger({ level: 'debug', name: 'dhcp-child', destination: process.stderr }),
  native,
  probeTimeoutMs: args.probeTimeoutMs ?? 0,
  onEvent: (e) => out({ event: e }),
});
await service.apply(args.config as never);
out({ ready: true, ports: service.ports(), native: native !== null });

createInterface({ input: process.stdin }).on('line', (line) => {
  service.apply(JSON.parse(line)).then(
    () => out({ applied: true }),
    (err: unknown) => out({ error: String(err) }),
  );
});
process.on('SIGTERM', () => {
  service.stop().then(() => process.exit(0));
});
