import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import { createRegionApp } from '../../src/region/http/app.js';
import { imageRoutes } from '../../src/region/http/images.js';
import { ImageStore } from '../../src/region/image-store.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kiln(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), ...env }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kiln images', () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-cli-images-'));
  const dataDir = join(root, 'data');
  const kernel = randomBytes(5 * 1024 * 1024 + 1);
  const initrd = randomBytes(123_457);
  const kernelFile = join(root, 'vmlinuz');
  let db: Database.Database;
  let region: Server;
  let origin: Server;
  let env: Record<string, string>;
  let originBase: string;

  before(async () => {
    writeFileSync(kernelFile, kernel);
    db = openRegionDatabase(dataDir, silentLogger);
    const { config } = loadConfig({ env: {}, overrides: { data_dir: dataDir } });
    const store = new ImageStore({ dataDir, logger: silentLogger });
    const plugin = imageRoutes({ db, store, logger: silentLogger, secret: randomBytes(32) });
    const app = createRegionApp({ config, logger: silentLogger, db, plugins: [plugin] });
    region = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    origin = createServer((req, res) => {
      if (req.url === '/initrd.img') res.end(initrd);
      else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originBase = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    env = {
      KILN_URL: `http://127.0.0.1:${(region.address() as AddressInfo).port}`,
      KILN_API_KEY: createApiKey(db, 'cli').key,
    };
  });

  after(async () => {
    for (const s of [region, origin]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    db.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('import a local kernel (uploaded) and an initrd URL through the API, then list', async () => {
    const r = await kiln(
      [
        'images',
        'import',
        '--name',
        'kiln/ephemeral',
        '--arch',
        'amd64/generic',
        '--kind',
        'ephemeral',
        '--kernel',
        kernelFile,
        '--initrd',
        `${originBase}/initrd.img`,
        '--json',
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.files.map((f: { name: string; sha256: string; size: number }) => [f.name, f.sha256, f.size]),
      [
        ['initrd.img', sha(initrd), initrd.length],
        ['vmlinuz', sha(kernel), kernel.length],
      ],
    );
    // Not a terminal: progress is plain lines on stderr, never on stdout.
    assert.match(r.stderr, /vmlinuz \(upload\): 5\.0 MiB done/);
    assert.doesNotMatch(r.stderr, /\r/);

    const list = await kiln(['images', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+ARCH\s+KIND/);
    assert.match(
      list.stdout,
      /kiln\/ephemeral\s+amd64\/generic\s+ephemeral\s+initrd\.img:121K vmlinuz:5\.0M/,
    );
  });

  test('mistakes give one clear line and exit 1; nothing is imported', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--kernel', join(root, 'missing'), '--initrd', kernelFile], /--kernel: no such file/],
      [['--kernel', kernelFile], /needs --kernel and --initrd/],
      [['--kernel', kernelFile, '--initrd', `${originBase}/nope`], /HTTP 404/],
    ];
    for (const [extra, msg] of cases) {
      const r = await kiln(
        ['images', 'import', '--name', 'broken', '--arch', 'amd64/generic', ...extra],
        env,
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, msg);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('kiln images:')).length,
        1,
      );
    }
    const bad = await kiln(['images', 'list'], { ...env, KILN_API_KEY: 'wrong' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid API key/);
    const list = JSON.parse((await kiln(['images', 'list', '--json'], env)).stdout);
    assert.deepEqual(
      list.map((r: { name: string }) => r.name),
      ['kiln/ephemeral'],
    );
  });

  test('--local imports into data_dir without a region', async () => {
    const local = join(root, 'local-data');
    const r = await kiln(
      [
        'images',
        'import',
        '--local',
        '--name',
        'n',
        '--arch',
        'amd64/generic',
        '--kernel',
        kernelFile,
        '--initrd',
        kernelFile,
      ],
      { KILN_DATA_DIR: local },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported n amd64\/generic \(os\)/);
    const list = await kiln(['images', 'list', '--local', '--json'], { KILN_DATA_DIR: local });
    const items = JSON.parse(list.stdout);
    assert.equal(items.length, 1);
    assert.equal(items[0].files[0].sha256, sha(kernel));
    const store = new ImageStore({ dataDir: local, logger: silentLogger });
    assert.deepEqual(store.list(), [sha(kernel)]);
  });
});
