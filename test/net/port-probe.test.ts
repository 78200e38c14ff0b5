import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { type AddressInfo, createServer } from 'node:net';
import { test } from 'node:test';
import { bindUdpReusePort, configureNative, listenReusePort } from '../../src/native/index.js';
import { probePortFree } from '../../src/net/port-probe.js';

test('a port held with SO_REUSEPORT is not free, though another SO_REUSEPORT bind would share it', async () => {
  assert.ok(configureNative({ enabled: true }).available, 'the native addon is built by npm ci');
  const holder = createServer();
  await listenReusePort(holder, '127.0.0.1', 0);
  const { port } = holder.address() as AddressInfo;
  try {
    await assert.rejects(probePortFree('tcp', '127.0.0.1', port), { code: 'EADDRINUSE' });
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
  }
  await probePortFree('tcp', '127.0.0.1', port);

  const udp = createSocket('udp4');
  await bindUdpReusePort(udp, '127.0.0.1', 0);
  const udpPort = udp.address().port;
  try {
    await assert.rejects(probePortFree('udp', '127.0.0.1', udpPort), { code: 'EADDRINUSE' });
  } finally {
    udp.close();
  }
  await probePortFree('udp', '127.0.0.1', 0);
});
