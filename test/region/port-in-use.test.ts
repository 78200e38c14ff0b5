import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import { configureNative, listenReusePort } from '../../src/native/index.js';
import { startRegion } from '../../src/region/index.js';

test('a region whose port another region holds (with SO_REUSEPORT) refuses to start instead of sharing it', async () => {
  configureNative({ enabled: true });
  const holder = createServer();
  await listenReusePort(holder, '127.0.0.1', 0);
  const { port } = holder.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-port-'));
  try {
    const { config } = loadConfig({
      env: {},
      overrides: {
        data_dir: dir,
        'region.http.host': '127.0.0.1',
        'region.http.port': port,
        'region.rpc.host': '127.0.0.1',
        'region.rpc.port': port === 65535 ? port - 1 : port + 1,
        'region.workers': 2,
      },
    });
    await assert.rejects(startRegion({ config, logger: silentLogger }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'KILN_ERR_PORT_IN_USE');
      assert.match(err.message, new RegExp(`port ${port}.*another program.*region\\.http\\.port`));
      return true;
    });
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
