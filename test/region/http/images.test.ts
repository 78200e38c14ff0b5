import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { loadConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/lib/logger.js';
import { createRegionApp } from '../../../src/region/http/app.js';
import { imageRoutes } from '../../../src/region/http/images.js';
import { ImageStore } from '../../../src/region/image-store.js';
import { listBootImages } from '../../../src/region/images-module.js';
import { rackHttpToken } from '../../../src/region/rack-token.js';
import { createApiKey, revokeApiKey } from '../../../src/storage/api-keys.js';
import type { BootResource } from '../../../src/storage/boot-resources.js';
import { openRegionDatabase } from '../../../src/storage/region-db.js';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('image routes', () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-images-http-'));
  const dataDir = join(root, 'data');
  const secret = randomBytes(32);
  const kernel = randomBytes(3 * 1024 * 1024 + 5);
  const initrd = randomBytes(700_001);
  let db: Database.Database;
  let store: ImageStore;
  let region: Server;
  let origin: Server;
  let base: string;
  let originBase: string;
  let key: string;
  const imported: BootResource[] = [];

  before(async () => {
    db = openRegionDatabase(dataDir, silentLogger);
    store = new ImageStore({ dataDir, logger: silentLogger });
    const { config } = loadConfig({ env: {}, overrides: { data_dir: dataDir } });
    const plugin = imageRoutes({
      db,
      store,
      logger: silentLogger,
      secret,
      maxFileBytes: 8 * 1024 * 1024,
      onImported: (r) => {
        imported.push(r);
      },
    });
    const app = createRegionApp({ config, logger: silentLogger, db, plugins: [plugin] });
    region = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(region.address() as AddressInfo).port}`;
    key = createApiKey(db, 'test').key;
    // A plain web server the region imports from by URL.
    origin = createServer((req, res) => {
      if (req.url === '/initrd.img') {
        res.writeHead(200, { 'Content-Length': initrd.length });
        res.end(initrd);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originBase = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const s of [region, origin]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    db.close();
    rmSync(root, { recursive: true, force: true });
  });

  const auth = () => ({ authorization: `Bearer ${key}` });

  test('upload with curl: verified, stored once, wrong sha256 refused with nothing kept', async () => {
    const file = join(root, 'vmlinuz');
    writeFileSync(file, kernel);
    const curl = async (query: string) => {
      const { stdout } = await run('curl', [
        '-sS',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '-H',
        `Authorization: Bearer ${key}`,
        '-H',
        'Content-Type: application/octet-stream',
        '--data-binary',
        `@${file}`,
        `${base}/api/v1/images${query}`,
      ]);
      const i = stdout.lastIndexOf('\n');
      return { status: Number(stdout.slice(i + 1)), body: JSON.parse(stdout.slice(0, i)) };
    };
    const wrong = 'cd'.repeat(32);
    const bad = await curl(`?sha256=${wrong}`);
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, 'KILN_ERR_IMAGE_SHA256_MISMATCH');
    assert.deepEqual(store.list(), []);
    assert.deepEqual(readdirSync(store.tmpDir), []);

    const first = await curl(`?sha256=${sha(kernel)}`);
    assert.equal(first.status, 201);
    assert.deepEqual(first.body, { sha256: sha(kernel), size: kernel.length });
    const again = await curl(`?sha256=${sha(kernel)}`);
    assert.equal(again.status, 200);
    const noHash = await curl('');
    assert.equal(noHash.status, 201);
    assert.ok(readFileSync(store.pathFor(sha(kernel))!).equals(kernel));
  });

  test('uploads need an API key and respect the size limit, declared or streamed', async () => {
    const res = await fetch(`${base}/api/v1/images`, { method: 'POST', body: 'tiny' });
    assert.equal(res.status, 401);
    const big = join(root, 'big');
    writeFileSync(big, Buffer.alloc(9 * 1024 * 1024));
    for (const extra of [[], ['-H', 'Transfer-Encoding: chunked']]) {
      const { stdout } = await run('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-H',
        `Authorization: Bearer ${key}`,
        ...extra,
        '--data-binary',
        `@${big}`,
        `${base}/api/v1/images`,
      ]).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
      assert.equal(stdout, '413', `with ${extra.join(' ') || 'Content-Length'}`);
    }
    assert.deepEqual(readdirSync(store.tmpDir), []);
    assert.deepEqual(store.list(), [sha(kernel)]);
  });

  test('import a resource from an uploaded file and a URL; it is listed and offered to racks', async () => {
    const res = await fetch(`${base}/api/v1/boot-resources/import`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'kiln/ephemeral',
        architecture: 'amd64/generic',
        kind: 'ephemeral',
        files: [
          { name: 'vmlinuz', filetype: 'kernel', sha256: sha(kernel) },
          { name: 'initrd.img', filetype: 'initrd', url: `${originBase}/initrd.img`, sha256: sha(initrd) },
        ],
      }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = (await res.json()) as any;
    assert.equal(body.name, 'kiln/ephemeral');
    assert.equal(body.files.length, 2);
    assert.equal(body.files[0].path, undefined, 'store paths are not shown');
    assert.equal(imported.length, 1);

    const list = (await (await fetch(`${base}/api/v1/boot-resources`, { headers: auth() })).json()) as any;
    assert.equal(list.items.length, 1);
    assert.deepEqual(
      list.items[0].files.map((f: any) => [f.name, f.filetype, f.sha256, f.size]),
      [
        ['initrd.img', 'initrd', sha(initrd), initrd.length],
        ['vmlinuz', 'kernel', sha(kernel), kernel.length],
      ],
    );
    assert.deepEqual(listBootImages(db), [
      {
        name: 'kiln/ephemeral',
        architecture: 'amd64/generic',
        kind: 'ephemeral',
        files: [
          { name: 'initrd.img', filetype: 'initrd', sha256: sha(initrd), size: initrd.length },
          { name: 'vmlinuz', filetype: 'kernel', sha256: sha(kernel), size: kernel.length },
        ],
      },
    ]);
  });

  test('bad imports: wrong sha256, unknown upload, local paths, unreachable URL — nothing changes', async () => {
    const post = (json: unknown) =>
      fetch(`${base}/api/v1/boot-resources/import`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify(json),
      });
    const before = listBootImages(db);
    const file = (f: Record<string, unknown>) => ({ name: 'x', architecture: 'amd64/generic', files: [f] });
    let res = await post(
      file({ name: 'i', filetype: 'initrd', url: `${originBase}/initrd.img`, sha256: 'ab'.repeat(32) }),
    );
    assert.equal(res.status, 422);
    assert.equal(
      ((await res.json()) as { error: { code: string } }).error.code,
      'KILN_ERR_IMAGE_SHA256_MISMATCH',
    );
    res = await post(file({ name: 'k', filetype: 'kernel', sha256: 'ef'.repeat(32) }));
    assert.equal(res.status, 404);
    res = await post(file({ name: 'k', filetype: 'kernel', url: '/etc/shadow' }));
    assert.equal(res.status, 400);
    res = await post(file({ name: 'k', filetype: 'kernel', url: `${originBase}/missing` }));
    assert.equal(res.status, 422);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KILN_ERR_IMAGE_SOURCE');
    res = await post({
      ...file({ name: 'k', filetype: 'kernel', sha256: sha(kernel) }),
      architecture: 'amd64',
    });
    assert.equal(res.status, 400);
    res = await post({ ...file({ name: 'k', filetype: 'kernel', sha256: sha(kernel) }), extra: 1 });
    assert.equal(res.status, 400);
    assert.deepEqual(listBootImages(db), before);
  });

  test('racks download with their token; API keys work; anything else is refused', async () => {
    const token = rackHttpToken(secret, 'abc123');
    const url = `${base}/images/${sha(initrd)}`;
    const got = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-length'), String(initrd.length));
    assert.equal(got.headers.get('etag'), `"${sha(initrd)}"`);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(initrd));

    const { stdout } = await run('curl', ['-sS', '-H', `Authorization: Bearer ${key}`, '-o', '-', url], {
      encoding: 'buffer',
      maxBuffer: 8 * 1024 * 1024,
    });
    assert.equal(sha(stdout), sha(initrd));

    const head = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(initrd.length));

    assert.equal((await fetch(url)).status, 401);
    const forged = `rack.abc123.${'0'.repeat(64)}`;
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${forged}` } })).status, 401);
    const other = rackHttpToken(randomBytes(32), 'abc123');
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${other}` } })).status, 401);
    const missing = await fetch(`${base}/images/${'0'.repeat(64)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(missing.status, 404);
    const notSha = await fetch(`${base}/images/..%2Fregion.db`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(notSha.status, 404);

    const { key: k2 } = createApiKey(db, 'short-lived');
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${k2}` } })).status, 200);
    revokeApiKey(db, 'short-lived');
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${k2}` } })).status, 401);
  });
});
