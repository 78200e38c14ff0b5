import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Config } from '../../src/config/schema.js';
import { silentLogger } from '../../src/lib/logger.js';
import { startRackImages } from '../../src/rack/image-service.js';
import { RegionClient } from '../../src/rack/region-client.js';
import { readRackSecret } from '../../src/rack/secret.js';
import { imagesModule } from '../../src/region/images-module.js';
import { ensureRegionSecrets } from '../../src/region/secrets.js';
import { type RegionWorker, startRegionWorker } from '../../src/region/worker.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { importEphemeralImage, sha256 } from '../helpers/images.js';
import { testConfig, waitFor } from '../region/helpers.js';

/**
 * Region and rack for real, in one process: a region worker with the images module (RPC over TLS
 * on loopback, HTTP on loopback), a RegionClient, and the rack image service. An import through
 * the API reaches the rack's cache without waiting for a poll: the region asks the rack to sync.
 */

let env: ReturnType<typeof testConfig>;
let worker: RegionWorker;
let client: RegionClient;
let images: ReturnType<typeof startRackImages>;
let base: string;
let key: string;

before(async () => {
  env = testConfig({ http: 0, rpc: 0 });
  await ensureRegionSecrets(env.dataDir, silentLogger);
  worker = await startRegionWorker({ config: env.config, logger: silentLogger, modules: [imagesModule] });
  base = `http://127.0.0.1:${worker.httpPort}`;
  key = createApiKey(worker.db, 'test').key;
  const rackConfig = structuredClone(env.config) as unknown as {
    data_dir: string;
    rack: { region_urls: string[] };
  };
  rackConfig.data_dir = join(env.dataDir, 'rack-side');
  rackConfig.rack.region_urls = [base];
  client = new RegionClient({
    regionUrls: [base],
    secret: readRackSecret(join(env.dataDir, 'secret')),
    dataDir: rackConfig.data_dir,
    hostname: 'rack-under-test',
    name: null,
    software: 'test',
    logger: silentLogger,
  });
  images = startRackImages({
    config: rackConfig as unknown as Config,
    logger: silentLogger,
    region: client,
    intervalMs: 3_600_000,
  });
  client.start();
  await waitFor('the rack to register', () => client.httpToken);
});

after(async () => {
  images?.stop();
  await client?.stop();
  await worker?.stop();
  env?.cleanup();
});

test('an import through the API lands in the rack cache, verified, without waiting for a poll', async () => {
  const kernel = randomBytes(1024 * 1024 + 7);
  const initrd = randomBytes(54_321);
  await importEphemeralImage(base, key, kernel, initrd);
  const kpath = await waitFor(
    'the kernel in the rack cache',
    () => images.cache.pathFor(sha256(kernel)),
    30_000,
  );
  const ipath = await waitFor(
    'the initrd in the rack cache',
    () => images.cache.pathFor(sha256(initrd)),
    30_000,
  );
  assert.ok(readFileSync(kpath).equals(kernel));
  assert.ok(readFileSync(ipath).equals(initrd));
  assert.ok(kpath.startsWith(join(env.dataDir, 'rack-side', 'rack', 'images')));
  // A sync now finds nothing to do.
  const again = await images.sync.syncNow();
  assert.deepEqual(again?.downloaded, []);
});
