import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { type CacheFile, ImageCache } from '../../src/rack/image-cache.js';
import { startImageSync } from '../../src/rack/image-sync.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const TOKEN = 'rack.abc.0123';

/** A stand-in for the region's `GET /images/<sha256>`, whose misbehaviour the test controls. */
class Origin {
  files = new Map<string, Buffer>();
  requests = new Map<string, number>();
  mode: 'ok' | 'cut' | 'corrupt' | 'slow' = 'ok';
  server!: Server;
  url = '';
  private held: Array<() => void> = [];

  add(buf: Buffer): CacheFile {
    this.files.set(sha(buf), buf);
    return { sha256: sha(buf), size: buf.length };
  }

  /** Lets every download held in 'slow' mode finish. */
  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const m = /^\/images\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401);
        res.end();
        return;
      }
      const body = m ? this.files.get(m[1]!) : undefined;
      if (!m || !body) {
        res.writeHead(404);
        res.end();
        return;
      }
      this.requests.set(m[1]!, (this.requests.get(m[1]!) ?? 0) + 1);
      res.writeHead(200, { 'Content-Length': body.length });
      if (this.mode === 'cut') {
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
      } else if (this.mode === 'corrupt') {
        const bad = Buffer.from(body);
        bad[bad.length - 1]! ^= 0xff;
        res.end(bad);
      } else if (this.mode === 'slow') {
        res.write(body.subarray(0, 10));
        this.held.push(() => res.end(body.subarray(10)));
      } else {
        res.end(body);
      }
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('rack image cache', () => {
  const top = mkdtempSync(join(tmpdir(), 'kiln-cache-'));
  const origin = new Origin();
  let dir: string;
  let n = 0;

  before(() => origin.start());
  after(async () => {
    await origin.stop();
    rmSync(top, { recursive: true, force: true });
  });
  beforeEach(() => {
    dir = join(top, `c${n++}`);
    origin.mode = 'ok';
    origin.requests.clear();
  });

  function cache(maxBytes = 1 << 30, urls?: string[]): ImageCache {
    const c = new ImageCache({
      dir,
      maxBytes,
      logger: silentLogger,
      source: { regionUrls: () => urls ?? [origin.url], token: () => TOKEN },
    });
    c.init();
    return c;
  }

  test('sync downloads what is missing with the rack token, verified; a second sync fetches nothing', async () => {
    const k = randomBytes(2 * 1024 * 1024 + 3);
    const i = randomBytes(1000);
    const files = [origin.add(k), origin.add(i)];
    const c = cache();
    assert.equal(c.pathFor(files[0]!.sha256), null);
    const r = await c.sync(files);
    assert.deepEqual(r.downloaded.sort(), files.map((f) => f.sha256).sort());
    assert.deepEqual(r.failed, []);
    assert.ok(readFileSync(c.pathFor(sha(k))!).equals(k));
    assert.ok(readFileSync(c.pathFor(sha(i))!).equals(i));
    const again = await c.sync(files);
    assert.deepEqual(again.downloaded, []);
    assert.equal(origin.requests.get(sha(k)), 1);
    assert.deepEqual(readdirSync(c.tmpDir), []);
  });

  test('concurrent requests for one file download it once', async () => {
    const f = origin.add(randomBytes(500_000));
    const c = cache();
    origin.mode = 'slow';
    const waits = Array.from({ length: 8 }, () => c.ensure(f));
    // Wait until the one request is in flight, then let it finish.
    const deadline = Date.now() + 5000;
    while (!origin.requests.get(f.sha256)) {
      assert.ok(Date.now() < deadline, 'download never started');
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(c.pathFor(f.sha256), null, 'nothing is served while downloading');
    origin.release();
    const paths = await Promise.all(waits);
    assert.equal(new Set(paths).size, 1);
    assert.equal(origin.requests.get(f.sha256), 1);
  });

  test('an interrupted or corrupted download is never served and leaves no temp file', async () => {
    const f = origin.add(randomBytes(300_000));
    const c = cache();
    for (const mode of ['cut', 'corrupt'] as const) {
      origin.mode = mode;
      await assert.rejects(c.ensure(f), (err) => isKilnError(err, 'KILN_ERR_IMAGE_DOWNLOAD'));
      assert.equal(c.pathFor(f.sha256), null, mode);
      assert.deepEqual(readdirSync(c.tmpDir), [], mode);
      assert.deepEqual(
        readdirSync(c.dir).filter((x) => x !== 'tmp'),
        [],
        mode,
      );
    }
    const r = await c.sync([f]);
    assert.equal(r.failed.length, 1, 'sync reports the failure instead of throwing');
    origin.mode = 'ok';
    assert.ok(c.pathFor((await c.sync([f])).downloaded[0]!));
  });

  test('a wrong token or a file the region lacks is an error; a second region URL is tried', async () => {
    const f = origin.add(randomBytes(1000));
    const bad = new ImageCache({
      dir,
      maxBytes: 1 << 20,
      logger: silentLogger,
      source: { regionUrls: () => [origin.url], token: () => 'rack.nope.00' },
    });
    bad.init();
    await assert.rejects(bad.ensure(f), /HTTP 401/);
    await assert.rejects(cache().ensure({ sha256: 'a'.repeat(64), size: 1 }), /HTTP 404/);
    const c = cache(1 << 20, ['http://127.0.0.1:1', origin.url]);
    assert.ok(await c.ensure(f));
  });

  test('past the limit the least recently used files are evicted, unlisted ones first', async () => {
    const kb = (x: number) => randomBytes(x * 1024);
    const [a, b, d, e] = [origin.add(kb(40)), origin.add(kb(40)), origin.add(kb(40)), origin.add(kb(40))];
    let t = 1_000_000;
    const c = new ImageCache({
      dir,
      maxBytes: 100 * 1024,
      logger: silentLogger,
      source: { regionUrls: () => [origin.url], token: () => TOKEN },
      now: () => t++,
    });
    c.init();
    await c.ensure(a!);
    await c.ensure(b!);
    c.pathFor(a!.sha256); // a is now more recently used than b
    await c.ensure(d!); // 120 KiB > 100: b, the least recently used, goes
    assert.equal(c.has(b!.sha256), false);
    assert.ok(c.has(a!.sha256) && c.has(d!.sha256));
    assert.deepEqual(readdirSync(dir).sort(), [a!.sha256, d!.sha256, 'tmp'].sort());
    // The region now lists d and e only: a (unlisted) goes before d even though d is older.
    c.pathFor(a!.sha256);
    const r = await c.sync([d!, e!]);
    assert.deepEqual(r.downloaded, [e!.sha256]);
    assert.deepEqual(r.evicted, [a!.sha256]);
    assert.ok(c.usedBytes() <= 100 * 1024);
  });

  test('after a crash: temp files removed, complete files kept with their use order', async () => {
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    const old = randomBytes(1000);
    const recent = randomBytes(1000);
    writeFileSync(join(dir, sha(old)), old);
    writeFileSync(join(dir, sha(recent)), recent);
    utimesSync(join(dir, sha(old)), 1000, 1000);
    writeFileSync(join(dir, 'tmp', `${sha(old)}.dead.part`), 'half');
    writeFileSync(join(dir, 'not-a-sha'), 'ignored');
    const c = cache(1500);
    assert.deepEqual(readdirSync(c.tmpDir), []);
    assert.deepEqual(
      c.list().map((e) => e.sha256),
      [sha(old), sha(recent)],
    );
    assert.deepEqual(c.evict(), [sha(old)]);
    assert.ok(c.pathFor(sha(recent)));
  });

  test('the sync loop syncs at start and on demand, and survives an unreachable region', async () => {
    const f = origin.add(randomBytes(2000));
    const image = {
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [{ name: 'vmlinuz', filetype: 'kernel', ...f }],
    };
    const down = startImageSync({
      cache: cache(),
      logger: silentLogger,
      intervalMs: 3_600_000,
      list: () => Promise.reject(new Error('not connected')),
    });
    try {
      assert.equal(await down.syncNow(), null);
    } finally {
      down.stop();
    }
    const c = cache();
    let calls = 0;
    const s = startImageSync({
      cache: c,
      logger: silentLogger,
      intervalMs: 3_600_000,
      list: async () => {
        calls++;
        return [image];
      },
    });
    try {
      await s.syncNow();
      assert.ok(c.pathFor(f.sha256), 'synced');
      assert.ok(calls >= 1);
      const again = await s.syncNow();
      assert.deepEqual(again?.downloaded, []);
      assert.equal(origin.requests.get(f.sha256), 1);
    } finally {
      s.stop();
    }
  });
});
