import { createSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';

/**
 * Check that nobody holds a port, by binding it once WITHOUT SO_REUSEPORT and letting go.
 *
 * Workers bind their shared ports with SO_REUSEPORT, and the kernel lets any socket of the same
 * user that also sets it share the port: a second kiln (or a stale worker) would then silently split
 * the traffic with us. A plain bind fails with EADDRINUSE against any holder, so the parent probes
 * once before it forks the workers. Port 0 (tests) is always free. Rejects with the bind error.
 */
export async function probePortFree(kind: 'tcp' | 'udp', host: string, port: number): Promise<void> {
  if (port === 0) return;
  if (kind === 'tcp') {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return;
  }
  const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}
