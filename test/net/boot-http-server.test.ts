import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reusePortSocket } from '../../src/native/index.js';
import { BootHttpServer, requestPath } from '../../src/net/boot-http-server.js';
import type { BootRequest, BootResolver } from '../../src/net/boot-source.js';
import {
  captureLogger,
  curl,
  killCurls,
  parseHeaders,
  startCurl,
  until,
  writeRandomFile,
} from './http-test-kit.js';

let dir: string;
const asked: BootRequest[] = [];
const SCRIPT = Buffer.from('#!ipxe\nchain http://10.0.0.1:5248/boot/52-54-00-12-34-56.ipxe\n');

const resolver: BootResolver = {
  async resolve(req) {
    asked.push(req);
    if (req.path === '/boot.ipxe') return { kind: 'content', body: SCRIPT, contentType: 'text/plain' };
    if (req.path === '/kernel') return { kind: 'file', path: join(dir, 'kernel') };
    if (req.path === '/big') return { kind: 'file', path: join(dir, 'big') };
    if (req.path === '/evicted') return { kind: 'file', path: join(dir, 'no-such-file') };
    if (req.path === '/boom') throw new Error('policy exploded');
    return null;
  },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-boot-http-'));
  await writeFile(join(dir, 'kernel'), 'not really a kernel\n');
  await writeRandomFile(join(dir, 'big'), 32 * 1024 * 1024);
});
after(async () => {
  killCurls();
  await rm(dir, { recursive: true, force: true });
});

describe('requestPath', () => {
  it('keeps the path raw, drops query and fragment, strips absolute-form', () => {
    assert.equal(requestPath('/a/../b%2e?x=1'), '/a/../b%2e');
    assert.equal(requestPath('/boot.ipxe#frag'), '/boot.ipxe');
    assert.equal(requestPath('http://rack:5248/images/x?y'), '/images/x');
    assert.equal(requestPath('http://rack:5248'), '/');
    assert.equal(requestPath('*'), '*');
  });
});

describe('BootHttpServer', () => {
  const log = captureLogger();
  const server = new BootHttpServer({ resolver, logger: log });
  let base: string;
  let port: number;

  before(async () => {
    const a = await server.start({ host: '127.0.0.1', port: 0 });
    port = a.port;
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server.close(1000));

  it('serves rendered content, uncached, and HEAD of it', async () => {
    let r = await curl(['-D', '-', '-A', 'iPXE/1.21.1', `${base}/boot.ipxe`]);
    const text = r.stdout.toString();
    assert.ok(text.endsWith(SCRIPT.toString()));
    const { status, headers } = parseHeaders(text);
    assert.equal(status, 200);
    assert.equal(headers['content-type'], 'text/plain');
    assert.equal(headers['content-length'], String(SCRIPT.length));
    assert.equal(headers['cache-control'], 'no-store');
    const req = asked.at(-1)!;
    assert.equal(req.protocol, 'http');
    assert.equal(req.userAgent, 'iPXE/1.21.1');
    assert.equal(req.remoteAddress, '127.0.0.1');
    assert.equal(req.localAddress, '127.0.0.1');
    assert.ok(req.remotePort > 0);

    r = await curl(['-I', `${base}/boot.ipxe`]);
    assert.equal(parseHeaders(r.stdout.toString()).headers['content-length'], String(SCRIPT.length));
  });

  it('serves files the resolver names', async () => {
    const r = await curl([`${base}/kernel`]);
    assert.equal(r.stdout.toString(), 'not really a kernel\n');
  });

  it('passes the path raw to the resolver (no normalisation here)', async () => {
    const r = await curl([
      '--path-as-is',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/a/../../etc/passwd%00?q=1`,
    ]);
    assert.equal(r.stdout.toString(), '404');
    assert.equal(asked.at(-1)!.path, '/a/../../etc/passwd%00');
  });

  it('answers 404, 405 (with Allow) and 500, and goes on serving', async () => {
    let r = await curl(['-D', '-', '-o', '/dev/null', `${base}/nothing-here`]);
    assert.equal(parseHeaders(r.stdout.toString()).status, 404);

    r = await curl(['-D', '-', '-o', '/dev/null', '-X', 'POST', '-d', 'x', `${base}/kernel`]);
    const h = parseHeaders(r.stdout.toString());
    assert.equal(h.status, 405);
    assert.equal(h.headers.allow, 'GET, HEAD');

    r = await curl(['-D', '-', '-o', '/dev/null', `${base}/boom`]);
    assert.equal(parseHeaders(r.stdout.toString()).status, 500);
    assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'boot http: request failed'));

    r = await curl(['-D', '-', '-o', '/dev/null', `${base}/evicted`]);
    assert.equal(parseHeaders(r.stdout.toString()).status, 404);

    r = await curl([`${base}/kernel`]);
    assert.equal(r.stdout.toString(), 'not really a kernel\n');
  });

  it('answers garbage with 400 and keeps serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let d = '';
      s.on('data', (x) => {
        d += x;
      });
      s.on('close', () => resolve(d));
      s.on('error', reject);
      s.write('\x00\x01 NOT HTTP AT ALL\r\n\r\n');
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
    const r = await curl([`${base}/kernel`]);
    assert.equal(r.stdout.toString(), 'not really a kernel\n');
  });

  it('logs each request at debug with status and bytes', () => {
    const l = log.lines.find((x) => x.msg === 'boot http request' && x.obj.path === '/kernel');
    assert.ok(l);
    assert.equal(l.level, 'debug');
    assert.equal(l.obj.status, 200);
    assert.equal(l.obj.bytes, 20);
  });
});

describe('BootHttpServer listening', () => {
  it('two servers share a port with reusePort, or take a ready fd', async () => {
    const a = new BootHttpServer({ resolver, logger: captureLogger() });
    const b = new BootHttpServer({ resolver, logger: captureLogger() });
    const la = await a.start({ host: '127.0.0.1', port: 0, reusePort: true });
    const lb = await b.start({ host: '127.0.0.1', port: la.port, reusePort: true });
    assert.equal(la.mode, 'native');
    assert.equal(lb.port, la.port);
    const r = await curl([`http://127.0.0.1:${la.port}/kernel`]);
    assert.equal(r.stdout.toString(), 'not really a kernel\n');
    await a.close();
    await b.close();

    const fd = reusePortSocket({ type: 'tcp4', host: '127.0.0.1', port: 0 });
    const c = new BootHttpServer({ resolver, logger: captureLogger() });
    const lc = await c.start({ host: '127.0.0.1', port: 0, fd });
    assert.equal(lc.mode, 'fd');
    const r2 = await curl([`http://127.0.0.1:${lc.port}/kernel`]);
    assert.equal(r2.stdout.toString(), 'not really a kernel\n');
    await c.close();
  });

  it('close() lets a transfer run for the grace period, then cuts it', async () => {
    const s = new BootHttpServer({ resolver, logger: captureLogger() });
    const { port } = await s.start({ host: '127.0.0.1', port: 0 });
    const slow = startCurl([
      '--limit-rate',
      '4M',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
      `http://127.0.0.1:${port}/big`,
    ]);
    assert.ok(await until(() => asked.some((q) => q.path === '/big')), 'download started');
    const started = Date.now();
    await s.close(300);
    assert.ok(Date.now() - started >= 250, 'waited for the grace period');
    const r = await slow.done;
    assert.notEqual(r.code, 0, 'the cut transfer is an error for the client');
    assert.ok(Number(r.stdout.toString()) < 32 * 1024 * 1024);
  });
});
