// file-http through a real BootHttpServer and real curl, once over sendfile and once over the stream
// fallback, with the same assertions: what curl receives must be the same bytes either way.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configureNative, openSocketDupCount } from '../../src/native/index.js';
import { BootHttpServer } from '../../src/net/boot-http-server.js';
import type { BootRequest, BootResolver } from '../../src/net/boot-source.js';
import {
  captureLogger,
  curl,
  fdCount,
  fdsTo,
  heldConnections,
  killCurls,
  parseHeaders,
  sha256,
  sha256File,
  startCurl,
  until,
  writeRandomFile,
} from './http-test-kit.js';

const SMALL = 3 * 1024 * 1024 + 17;
const BIG = 64 * 1024 * 1024;

let dir: string;
let files: Record<string, string>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-file-http-'));
  files = {
    '/small': join(dir, 'small.bin'),
    '/big': join(dir, 'big.bin'),
    '/empty': join(dir, 'empty.bin'),
    '/dir': join(dir, 'a-dir'),
    '/gone': join(dir, 'never-created'),
  };
  await writeRandomFile(files['/small']!, SMALL);
  await writeRandomFile(files['/big']!, BIG);
  await writeRandomFile(files['/empty']!, 0);
  await mkdir(files['/dir']!);
});

after(async () => {
  killCurls();
  await rm(dir, { recursive: true, force: true });
});

const modes = [
  { name: 'sendfile', sendfile: true, disableNative: false, via: 'sendfile' },
  { name: 'stream fallback (option)', sendfile: false, disableNative: false, via: 'stream' },
  { name: 'stream fallback (native.enabled: false)', sendfile: true, disableNative: true, via: 'stream' },
] as const;

for (const mode of modes) {
  describe(`file-http over ${mode.name}`, () => {
    let server: BootHttpServer;
    let base: string;
    let port: number;
    const log = captureLogger();
    const asked: BootRequest[] = [];
    let out: string;

    const resolver: BootResolver = {
      async resolve(req) {
        asked.push(req);
        const path = files[req.path];
        return path ? { kind: 'file', path } : null;
      },
    };

    before(async () => {
      if (mode.disableNative) configureNative({ enabled: false });
      out = await mkdtemp(join(dir, 'out-'));
      server = new BootHttpServer({ resolver, logger: log, sendfile: mode.sendfile });
      const a = await server.start({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${a.port}`;
      port = a.port;
    });
    after(async () => {
      await server.close(1000);
      configureNative({ enabled: true });
    });

    /** The `via` the server logged for the last completed request to `path`. */
    function lastVia(path: string): unknown {
      const l = log.lines.filter((x) => x.obj.path === path && x.msg === 'boot http request').pop();
      return l?.obj.via;
    }

    it('GET: the whole file, same bytes, validators and length', async () => {
      const file = join(out, 'get');
      const r = await curl(['-D', '-', '-o', file, `${base}/small`]);
      const { status, headers } = parseHeaders(r.stdout.toString());
      assert.equal(status, 200);
      assert.equal(headers['content-length'], String(SMALL));
      assert.equal(headers['accept-ranges'], 'bytes');
      assert.match(headers.etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.ok(headers['last-modified']);
      assert.equal(await sha256File(file), await sha256File(files['/small']!));
      assert.equal(lastVia('/small'), mode.via);
    });

    it('Range: one range gives 206 with exactly those bytes', async () => {
      const whole = await readFile(files['/small']!);
      for (const [range, start, end] of [
        ['100-199', 100, 199],
        ['0-0', 0, 0],
        [`${SMALL - 10}-`, SMALL - 10, SMALL - 1],
        ['-500', SMALL - 500, SMALL - 1],
        [`1000-${SMALL * 2}`, 1000, SMALL - 1],
      ] as const) {
        const file = join(out, `range-${start}`);
        const r = await curl(['-D', '-', '-o', file, '-H', `Range: bytes=${range}`, `${base}/small`]);
        const { status, headers } = parseHeaders(r.stdout.toString());
        assert.equal(status, 206, range);
        assert.equal(headers['content-range'], `bytes ${start}-${end}/${SMALL}`);
        assert.equal(headers['content-length'], String(end - start + 1));
        assert.equal(sha256(await readFile(file)), sha256(whole.subarray(start, end + 1)), range);
      }
    });

    it('Range: several ranges are ignored (200, whole file); past the end is 416', async () => {
      const file = join(out, 'multi');
      let r = await curl(['-D', '-', '-o', file, '-H', 'Range: bytes=0-9,20-29', `${base}/small`]);
      assert.equal(parseHeaders(r.stdout.toString()).status, 200);
      assert.equal((await stat(file)).size, SMALL);

      r = await curl(['-D', '-', '-o', '/dev/null', '-H', `Range: bytes=${SMALL}-`, `${base}/small`]);
      const { status, headers } = parseHeaders(r.stdout.toString());
      assert.equal(status, 416);
      assert.equal(headers['content-range'], `bytes */${SMALL}`);
    });

    it('HEAD: headers only', async () => {
      const r = await curl(['-I', `${base}/small`]);
      const { status, headers } = parseHeaders(r.stdout.toString());
      assert.equal(status, 200);
      assert.equal(headers['content-length'], String(SMALL));
      // curl -I stops after the headers; a body would have shown up as a protocol error on reuse.
      const two = await curl([
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{size_download}\\n',
        '-I',
        `${base}/small`,
        '-I',
        `${base}/small`,
      ]);
      assert.equal(two.code, 0);
    });

    it('If-None-Match and If-Modified-Since give 304; If-Range mismatch gives the whole file', async () => {
      const first = parseHeaders((await curl(['-I', `${base}/small`])).stdout.toString()).headers;
      const etag = first.etag!;
      let r = await curl(['-D', '-', '-o', '/dev/null', '-H', `If-None-Match: ${etag}`, `${base}/small`]);
      let h = parseHeaders(r.stdout.toString());
      assert.equal(h.status, 304);
      assert.equal(h.headers.etag, etag);

      r = await curl(['-D', '-', '-o', '/dev/null', '-H', 'If-None-Match: "nope"', `${base}/small`]);
      assert.equal(parseHeaders(r.stdout.toString()).status, 200);

      r = await curl([
        '-D',
        '-',
        '-o',
        '/dev/null',
        '-H',
        `If-Modified-Since: ${first['last-modified']}`,
        `${base}/small`,
      ]);
      assert.equal(parseHeaders(r.stdout.toString()).status, 304);

      const file = join(out, 'ifrange');
      r = await curl([
        '-D',
        '-',
        '-o',
        file,
        '-H',
        'Range: bytes=0-9',
        '-H',
        'If-Range: "stale"',
        `${base}/small`,
      ]);
      h = parseHeaders(r.stdout.toString());
      assert.equal(h.status, 200);
      assert.equal((await stat(file)).size, SMALL);

      r = await curl([
        '-D',
        '-',
        '-o',
        '/dev/null',
        '-H',
        'Range: bytes=0-9',
        '-H',
        `If-Range: ${etag}`,
        `${base}/small`,
      ]);
      assert.equal(parseHeaders(r.stdout.toString()).status, 206);
    });

    it('keep-alive: several requests on one connection', async () => {
      const files3 = [1, 2, 3].map((i) => join(out, `ka-${i}`));
      const w = ['-w', '%{http_code}:%{num_connects} '];
      const r = await curl([
        ...w,
        '-o',
        files3[0]!,
        `${base}/small`,
        '--next',
        ...w,
        '-o',
        files3[1]!,
        '-r',
        '5-9',
        `${base}/small`,
        '--next',
        ...w,
        '-o',
        files3[2]!,
        '-r',
        '5-9',
        `${base}/small`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      // One new connection for the first transfer, none after.
      assert.equal(r.stdout.toString().trim(), '200:1 206:0 206:0');
      assert.equal(await sha256File(files3[0]!), await sha256File(files['/small']!));
    });

    it('an empty file and a directory', async () => {
      let r = await curl(['-D', '-', '-o', '/dev/null', `${base}/empty`]);
      let h = parseHeaders(r.stdout.toString());
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], '0');
      r = await curl(['-D', '-', '-o', '/dev/null', `${base}/dir`]);
      h = parseHeaders(r.stdout.toString());
      assert.equal(h.status, 404);
      r = await curl(['-D', '-', '-o', '/dev/null', `${base}/gone`]);
      assert.equal(parseHeaders(r.stdout.toString()).status, 404);
    });

    it('a 64 MiB file arrives intact', async () => {
      const file = join(out, 'big');
      const r = await curl(['-o', file, '-w', '%{http_code}', `${base}/big`]);
      assert.equal(r.stdout.toString(), '200');
      assert.equal(await sha256File(file), await sha256File(files['/big']!));
      assert.equal(lastVia('/big'), mode.via);
      await rm(file);
    });

    it('a client that aborts mid-transfer leaks no file descriptor', async () => {
      // Warm up so lazily opened descriptors (thread pool, etc.) are already counted.
      await curl(['-o', '/dev/null', `${base}/small`]);
      const connections = () =>
        new Promise<number>((resolve) => server.server.getConnections((_e, n) => resolve(n)));
      // Count with no connection open, so the baseline holds only the server's own descriptors.
      assert.ok(await until(async () => (await connections()) === 0));
      const baseline = await fdCount();
      const file = join(out, 'abort');
      // A slow reader: the server's socket buffer fills, so sendfile meets EAGAIN and waits.
      const c = startCurl(['--limit-rate', '2M', '-o', file, `${base}/big`]);
      assert.ok(
        await until(
          async () => (await stat(file).catch(() => null))?.size !== undefined && (await stat(file)).size > 0,
        ),
        'download started',
      );
      // The open file and the socket (plus the dup on the sendfile path) are held now.
      assert.ok((await fdCount()) > baseline);
      process.kill(c.proc.pid!, 'SIGKILL');
      await c.done;
      assert.ok(
        await until(() => log.lines.some((l) => l.msg === 'boot http: transfer cut short')),
        'the server noticed the abort',
      );
      assert.ok(
        await until(async () => (await fdCount()) <= baseline),
        `fds back to ${baseline}: ${await fdCount()}`,
      );
      // The specific descriptors: the file, and the connection (its dup on the sendfile path).
      assert.equal(await fdsTo(files['/big']!), 0);
      assert.ok(await until(async () => (await heldConnections(port)) === 0), 'no connection held open');
      assert.equal(openSocketDupCount(), 0, 'every sendfile dup closed');
      // And it still serves.
      const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${base}/small`]);
      assert.equal(r.stdout.toString(), '200');
    });

    it('long downloads do not starve a short request', async () => {
      const bigAsked = () => asked.filter((a) => a.path === '/big').length;
      const before = bigAsked();
      // Two clients, each fetching the big file four times over one connection.
      const bigs = [1, 2].map(() =>
        startCurl([
          '-o',
          '/dev/null',
          '-o',
          '/dev/null',
          '-o',
          '/dev/null',
          '-o',
          '/dev/null',
          ...Array(4).fill(`${base}/big`),
        ]),
      );
      assert.ok(await until(() => bigAsked() >= before + 2, 10_000, 1), 'both big downloads started');
      const small = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${base}/small`]);
      assert.equal(small.stdout.toString(), '200');
      const stillRunning = bigs.filter((b) => b.proc.exitCode === null).length;
      assert.ok(stillRunning > 0, 'the short request was answered while the long ones were still going');
      for (const b of bigs) assert.equal((await b.done).code, 0);
    });
  });
}
