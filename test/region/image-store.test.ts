import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { ImageStore, type ImportProgress } from '../../src/region/image-store.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const top = mkdtempSync(join(tmpdir(), 'kiln-imgstore-'));
const payload = randomBytes(9 * 1024 * 1024 + 17);
const payloadSha = sha(payload);
let server: Server;
let base: string;

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/file') {
      res.writeHead(200, { 'Content-Length': payload.length });
      res.end(payload);
    } else if (req.url === '/chunked') {
      res.writeHead(200);
      res.write(payload.subarray(0, 1000));
      res.end(payload.subarray(1000));
    } else if (req.url === '/cut') {
      // Promises the whole file, sends a third, then drops the connection: an interrupted download.
      res.writeHead(200, { 'Content-Length': payload.length });
      res.write(payload.subarray(0, payload.length / 3), () => res.socket?.destroy());
    } else {
      res.writeHead(404);
      res.end('no');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(top, { recursive: true, force: true });
});

function newStore(): ImageStore {
  return new ImageStore({ dataDir: mkdtempSync(join(top, 'data-')), logger: silentLogger });
}

function assertNoTemp(store: ImageStore): void {
  assert.deepEqual(readdirSync(store.tmpDir), []);
}

test('a local file is stored under its sha256, with progress, and importing it again is a no-op', async () => {
  const store = newStore();
  const src = join(top, 'kernel');
  writeFileSync(src, payload);
  const seen: ImportProgress[] = [];
  const got = await store.put(src, { onProgress: (p) => seen.push(p) });
  assert.equal(got.sha256, payloadSha);
  assert.equal(got.size, payload.length);
  assert.equal(got.path, join(store.filesDir, payloadSha));
  assert.ok(readFileSync(got.path).equals(payload));
  assert.equal(store.pathFor(payloadSha), got.path);
  assert.ok(seen.length >= 2, 'progress is reported while copying');
  assert.deepEqual(seen.at(-1), { label: src, bytes: payload.length, total: payload.length, done: true });
  const again = await store.put(src, { sha256: payloadSha.toUpperCase() });
  assert.equal(again.path, got.path);
  assert.deepEqual(store.list(), [payloadSha]);
  assertNoTemp(store);
});

test('a URL is streamed in and verified, with or without Content-Length', async () => {
  const store = newStore();
  const got = await store.put(`${base}/file`, { sha256: payloadSha });
  assert.equal(got.sha256, payloadSha);
  const chunked = await store.put(`${base}/chunked`);
  assert.equal(chunked.sha256, payloadSha);
  assert.ok(readFileSync(got.path).equals(payload));
  assertNoTemp(store);
});

test('a wrong sha256 is refused and nothing is kept', async () => {
  const store = newStore();
  const src = join(top, 'k2');
  writeFileSync(src, payload);
  const wrong = 'ab'.repeat(32);
  await assert.rejects(store.put(src, { sha256: wrong }), (err) =>
    isKilnError(err, 'KILN_ERR_IMAGE_SHA256_MISMATCH'),
  );
  await assert.rejects(store.put(`${base}/file`, { sha256: wrong }), (err) =>
    isKilnError(err, 'KILN_ERR_IMAGE_SHA256_MISMATCH'),
  );
  assert.equal(store.pathFor(wrong), null);
  assert.equal(store.pathFor(payloadSha), null);
  assert.deepEqual(store.list(), []);
  assertNoTemp(store);
  await assert.rejects(store.put(src, { sha256: 'nothex' }), (err) =>
    isKilnError(err, 'KILN_ERR_VALIDATION'),
  );
});

test('an interrupted download, a 404 and a missing file leave nothing stored', async () => {
  const store = newStore();
  await assert.rejects(store.put(`${base}/cut`), (err) => isKilnError(err, 'KILN_ERR_IMAGE_SOURCE'));
  await assert.rejects(store.put(`${base}/missing`), (err) => isKilnError(err, 'KILN_ERR_IMAGE_SOURCE'));
  await assert.rejects(store.put(join(top, 'does-not-exist')), (err) =>
    isKilnError(err, 'KILN_ERR_IMAGE_SOURCE'),
  );
  await assert.rejects(store.put(top), (err) => isKilnError(err, 'KILN_ERR_IMAGE_SOURCE'));
  assert.deepEqual(store.list(), []);
  assertNoTemp(store);
});

test('a source over the size limit is refused', async () => {
  const store = newStore();
  await assert.rejects(store.put(`${base}/chunked`, { maxBytes: 1024 }), (err) =>
    isKilnError(err, 'KILN_ERR_IMAGE_TOO_LARGE'),
  );
  await assert.rejects(store.put(`${base}/file`, { maxBytes: 1024 }), (err) =>
    isKilnError(err, 'KILN_ERR_IMAGE_TOO_LARGE'),
  );
  assert.deepEqual(store.list(), []);
  assertNoTemp(store);
});

test('temp files left by a crash are removed at start; unreferenced files can be collected', async () => {
  const store = newStore();
  writeFileSync(join(store.tmpDir, 'dead.part'), 'half a kernel');
  // A pid that cannot be alive (above pid_max) wrote this one; the live process's own are kept.
  writeFileSync(join(store.tmpDir, '4194305-abc.part'), 'half an initrd');
  writeFileSync(join(store.tmpDir, `${process.ppid}-abc.part`), 'a live import elsewhere');
  assert.equal(store.removeStrayTempFiles(), 2);
  assert.deepEqual(readdirSync(store.tmpDir), [`${process.ppid}-abc.part`]);
  rmSync(join(store.tmpDir, `${process.ppid}-abc.part`));
  const a = await store.put(`${base}/file`);
  const bBuf = Buffer.from('another file');
  const src = join(top, 'b');
  writeFileSync(src, bBuf);
  const b = await store.put(src);
  assert.deepEqual(store.removeUnreferenced(new Set([a.sha256])), [b.sha256]);
  assert.deepEqual(store.list(), [a.sha256]);
});

test('pathFor refuses anything that is not a sha256', () => {
  const store = newStore();
  for (const bad of ['../region.db', '', 'x'.repeat(64), `${'a'.repeat(64)}/..`])
    assert.equal(store.pathFor(bad), null);
});
