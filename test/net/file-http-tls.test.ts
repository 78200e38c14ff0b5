// Under TLS the bytes must be encrypted in user space, so sendfile cannot serve: file-http must
// notice the TLS socket and stream, even with the addon available.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { nativeStatus } from '../../src/native/index.js';
import { type ServeFileResult, serveFile } from '../../src/net/file-http.js';
import { curl, killCurls, parseHeaders, sha256, sha256File, writeRandomFile } from './http-test-kit.js';

const SIZE = 5 * 1024 * 1024 + 3;
let dir: string;
let server: https.Server;
let base: string;
const results: ServeFileResult[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-file-https-'));
  await writeRandomFile(join(dir, 'kernel'), SIZE);
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-days',
    '1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]);
  server = https.createServer(
    { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
    (req, res) => {
      serveFile(req, res, join(dir, 'kernel')).then(
        (r) => results.push(r),
        () => res.destroy(),
      );
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  killCurls();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('file-http over TLS', () => {
  it('streams (no sendfile) even with the addon available, same bytes', async () => {
    assert.equal(nativeStatus().available, true);
    const out = join(dir, 'got');
    const r = await curl(['-k', '-o', out, '-w', '%{http_code}', `${base}/kernel`]);
    assert.equal(r.stdout.toString(), '200');
    assert.equal(await sha256File(out), await sha256File(join(dir, 'kernel')));
    assert.equal(results.at(-1)?.via, 'stream');
    assert.equal(results.at(-1)?.bytes, SIZE);
  });

  it('Range works over TLS too', async () => {
    const hdr = join(dir, 'headers');
    const r = await curl(['-k', '-D', hdr, '-r', '1000-1999', `${base}/kernel`]);
    assert.equal(parseHeaders(await readFile(hdr, 'latin1')).status, 206);
    const whole = await readFile(join(dir, 'kernel'));
    assert.equal(sha256(r.stdout), sha256(whole.subarray(1000, 2000)));
  });
});
