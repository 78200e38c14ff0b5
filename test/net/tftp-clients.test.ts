/**
 * kiln's TFTP server against the real clients machines and operators use: tftp-hpa, atftp, curl
 * and busybox, on 127.0.0.1. Every download is compared by sha256 with the served file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LEVEL, makeRoot, type Root, run, type Served, serve, sha256, sha256File } from './tftp-helpers.js';

let root: Root;
let s: Served;
let out: string;

before(async () => {
  root = makeRoot();
  out = join(root.top, 'out');
  await run('mkdir', ['-p', out]);
  s = await serve(root.root);
});

after(async () => {
  await s.server.close();
  root.cleanup();
});

const port = () => String(s.port);
let n = 0;
const dest = () => join(out, `f${n++}`);

function assertSame(local: string, name: string): void {
  assert.ok(existsSync(local), `${name} was written`);
  assert.equal(sha256File(local), sha256(root.files[name]!), `${name} sha256`);
}

test('tftp-hpa (512-byte blocks, no options) gets binary files of every shape', async () => {
  for (const name of ['undionly.kpxe', 'exact.bin', 'empty.bin', 'big.bin']) {
    const local = dest();
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', port(), '-c', 'get', name, local]);
    assert.equal(r.code, 0, r.stderr);
    assertSame(local, name);
  }
});

test('tftp-hpa in its default netascii mode gets a text file back with its own line ends', async () => {
  const local = dest();
  const r = await run('tftp', ['127.0.0.1', port(), '-c', 'get', 'pxelinux.cfg/default', local]);
  assert.equal(r.code, 0, r.stderr);
  assertSame(local, 'pxelinux.cfg/default');
});

test('atftp with blksize 1468, tsize and windowsize 1, 4 and 8', async () => {
  for (const window of [1, 4, 8]) {
    for (const name of ['big.bin', 'exact.bin', 'empty.bin']) {
      const local = dest();
      const r = await run('atftp', [
        ...['--option', 'blksize 1468', '--option', `windowsize ${window}`, '--option', 'tsize 0'],
        ...['-g', '-r', name, '-l', local, '127.0.0.1', port()],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assertSame(local, name);
    }
  }
});

test('curl tftp:// with --tftp-blksize 1468', async () => {
  for (const name of ['undionly.kpxe', 'big.bin']) {
    const local = dest();
    const r = await run('curl', [
      '-sS',
      '--max-time',
      '20',
      '--tftp-blksize',
      '1468',
      '-o',
      local,
      `tftp://127.0.0.1:${port()}/${name}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertSame(local, name);
  }
});

test('busybox tftp -b 1468', async () => {
  const local = dest();
  const r = await run('busybox', [
    'tftp',
    '-g',
    '-b',
    '1468',
    '-r',
    'undionly.kpxe',
    '-l',
    local,
    '127.0.0.1',
    port(),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assertSame(local, 'undionly.kpxe');
});

test('block numbers roll over past 65535: atftp at blksize 8 gets a 3 MB file', async () => {
  const name = 'big.bin';
  const local = dest();
  // 3 MB at 8 bytes a block is 375,000 blocks: the 16-bit counter wraps five times.
  const r = await run(
    'atftp',
    [
      ...['--option', 'blksize 8', '--option', 'windowsize 32', '--option', 'tsize 0'],
      ...['-g', '-r', name, '-l', local, '127.0.0.1', port()],
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assertSame(local, name);
});

test('traversal attempts are refused with access violation and logged with the client address', async () => {
  const before = s.logs.length;
  for (const bad of ['../secret', '/../secret', 'pxelinux.cfg/../../secret', '%2e%2e/secret', 'escape']) {
    const local = dest();
    const r = await run('tftp', ['-m', 'binary', '127.0.0.1', port(), '-c', 'get', bad, local]);
    assert.match(r.stdout + r.stderr, /Error code 2/, bad);
    assert.ok(!existsSync(local) || statSync(local).size === 0, `${bad}: nothing written`);
    assert.ok(!existsSync(local) || !readFileSync(local, 'utf8').includes('not for clients'));
  }
  const refusals = s.logs.slice(before).filter((l) => l.level === LEVEL.warn && /refused/.test(l.msg));
  assert.equal(refusals.length, 5);
  for (const l of refusals) assert.match(String(l.client), /^127\.0\.0\.1:\d+$/);
});

test('a missing file is error 1, file not found', async () => {
  const r = await run('tftp', ['-m', 'binary', '127.0.0.1', port(), '-c', 'get', 'nope.efi', dest()]);
  assert.match(r.stdout + r.stderr, /Error code 1/);
});

test('uploads are refused with access violation and nothing is written', async () => {
  const local = join(root.top, 'upload.bin');
  await run('sh', ['-c', `head -c 5000 /dev/urandom > ${local}`]);
  const r = await run('tftp', ['-m', 'binary', '127.0.0.1', port(), '-c', 'put', local, 'upload.bin']);
  assert.match(r.stdout + r.stderr, /Error code 2/);
  assert.equal(existsSync(join(root.root, 'upload.bin')), false);
});
