import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Logger, silentLogger } from '../../src/lib/logger.js';
import { RegionClient } from '../../src/rack/region-client.js';
import { ensureRegionSecrets, type RegionSecrets } from '../../src/region/secrets.js';
import { type RegionWorker, startRegionWorker } from '../../src/region/worker.js';
import { Ping } from '../../src/rpc/commands/index.js';
import { testConfig, waitFor } from '../region/helpers.js';

let worker: RegionWorker;
let secrets: RegionSecrets;
let env: ReturnType<typeof testConfig>;

before(async () => {
  env = testConfig({ http: 0, rpc: 0 });
  secrets = (await ensureRegionSecrets(env.dataDir, silentLogger)).secrets;
  worker = await startRegionWorker({ config: env.config, logger: silentLogger });
});
after(async () => {
  await worker?.stop();
  env?.cleanup();
});

function client(dir: string, urls: string[]): RegionClient {
  return new RegionClient({
    regionUrls: urls,
    secret: secrets.secret,
    dataDir: join(env.dataDir, dir),
    hostname: `rack-${dir}`,
    name: null,
    software: 'test',
    logger: silentLogger,
    fastPollMs: 100,
  });
}

test('first contact pins the region CA and remembers the region; a restart works with the region HTTP down', async (t) => {
  const first = client('a', [`http://127.0.0.1:${worker.httpPort}`]);
  t.after(() => first.stop());
  first.start();
  await waitFor('whole', () => first.isWhole());
  assert.deepEqual(first.connectedWorkers(), [worker.id]);
  const pinned = readFileSync(join(env.dataDir, 'a/rack/region-ca.pem'), 'utf8');
  assert.equal(pinned.replace(/\s/g, ''), secrets.caCert.replace(/\s/g, ''));
  const systemId = first.systemId;
  assert.ok(systemId);
  await first.stop();

  // Nothing answers on the discovery URL now: the remembered addresses are used.
  const again = client('a', ['http://127.0.0.1:1']);
  t.after(() => again.stop());
  again.start();
  await waitFor('whole from remembered addresses', () => again.isWhole());
  assert.equal(again.systemId, systemId, 'same rack id after restart');
  assert.equal(typeof (await again.call(Ping, {})).time, 'number');
});

test('a rack whose pinned CA is not the region CA refuses to connect, and says why', async (t) => {
  // Pin some other certificate (the server certificate is no CA: nothing verifies against it).
  const other = `${secrets.serverCert.split('-----END CERTIFICATE-----')[0]}-----END CERTIFICATE-----\n`;
  mkdirSync(join(env.dataDir, 'b/rack'), { recursive: true });
  writeFileSync(join(env.dataDir, 'b/rack/region-ca.pem'), other);
  const errors: string[] = [];
  const logger: Logger = {
    ...silentLogger,
    error: (obj: object | string, msg?: string) => {
      errors.push(`${(obj as { code?: string }).code ?? ''} ${msg ?? obj}`);
    },
    child: () => logger,
  };
  const fresh = new RegionClient({
    regionUrls: [`http://127.0.0.1:${worker.httpPort}`],
    secret: secrets.secret,
    dataDir: join(env.dataDir, 'b'),
    hostname: 'rack-b',
    name: null,
    software: 'test',
    logger,
    fastPollMs: 100,
  });
  t.after(() => fresh.stop());
  fresh.start();
  await waitFor('a CA mismatch error', () => errors.find((e) => e.startsWith('KILN_ERR_RPC_CA_MISMATCH')));
  assert.match(errors[0]!, /pinned region CA/);
  assert.deepEqual(fresh.connectedWorkers(), []);
  assert.equal(readFileSync(join(env.dataDir, 'b/rack/region-ca.pem'), 'utf8'), other, 'the pin is kept');
  await assert.rejects(fresh.call(Ping, {}), { code: 'KILN_ERR_RPC_NOT_CONNECTED' });
});
