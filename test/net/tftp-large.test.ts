/**
 * Files too large to share in memory (over 4 MiB): read in chunks straight into framed packets,
 * one chunk ahead. Real clients get them whole; windows that roll back across a chunk boundary
 * resend the right bytes; a file that shrinks under a transfer ends it with an error, not with
 * wrong bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Opcode } from '../../src/protocols/tftp/packet.js';
import {
  makeRoot,
  RawClient,
  type Root,
  rrq,
  run,
  serve,
  sha256,
  sha256File,
  waitFor,
} from './tftp-helpers.js';

const SIZE = 5_500_000;
let root: Root;
const servers: { close(): Promise<void> }[] = [];
const clients: RawClient[] = [];

before(() => {
  root = makeRoot({ 'large.bin': randomBytes(SIZE), 'shrinks.bin': randomBytes(SIZE) });
});
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  root.cleanup();
});

async function setup() {
  const s = await serve(root.root, { timeoutMs: 2000 });
  servers.push(s.server);
  const c = await RawClient.open();
  clients.push(c);
  return { ...s, c };
}

test('atftp (blksize 1468, windowsize 8) and tftp-hpa (512-byte lockstep) get a large file intact', async () => {
  const { port } = await setup();
  const a = join(root.top, 'large-atftp');
  const r1 = await run(
    'atftp',
    [
      ...['--option', 'blksize 1468', '--option', 'windowsize 8', '--option', 'tsize 0'],
      ...['-g', '-r', 'large.bin', '-l', a, '127.0.0.1', String(port)],
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(sha256File(a), sha256(root.files['large.bin']!));
  const h = join(root.top, 'large-hpa');
  const r2 = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', 'large.bin', h], {
    timeoutMs: 120_000,
  });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(sha256File(h), sha256(root.files['large.bin']!));
});

test('windows that roll back across chunk boundaries resend the right bytes', async () => {
  const { c, port, server } = await setup();
  const blksize = 1468;
  const ws = 8;
  const last = Math.floor(SIZE / blksize) + 1;
  // A chunk is 45 blocks here (64 KiB / 1468, rounded up): 45|46 and 90|91 are boundaries.
  const lose = new Set([45, 46, 91, 200, 1000, last - 1]);
  c.sendTo(port, rrq('large.bin', { blksize, windowsize: ws }));
  assert.equal((await c.next()).op, Opcode.OACK);
  c.ack(0);
  const parts: Buffer[] = [];
  let base = 0;
  while (base < last) {
    const windowEnd = Math.min(base + ws, last);
    let inOrder = base;
    let gap = false;
    // Read to the window's last block; after a "lost" block the rest of the window is out of order.
    for (;;) {
      const p = await c.next();
      assert.equal(p.op, Opcode.DATA);
      if (p.op !== Opcode.DATA) break;
      const b = p.block; // under 65536 blocks here: wire number = absolute number
      if (b <= base) continue; // a timer's repeat of a window already answered
      if (!gap && b === inOrder + 1) {
        if (lose.delete(b)) gap = true;
        else {
          parts.push(Buffer.from(p.data));
          inOrder = b;
        }
      }
      if (b === windowEnd) break;
    }
    c.ack(inOrder);
    base = inOrder;
  }
  assert.equal(lose.size, 0, 'every planned loss happened');
  assert.equal(sha256(Buffer.concat(parts)), sha256(root.files['large.bin']!));
  await waitFor(() => server.stats().completed === 1, 'completion');
});

test('a large file that shrinks during the transfer ends it with an error, never with wrong bytes', async () => {
  const { c, port, server } = await setup();
  c.sendTo(port, rrq('shrinks.bin', { blksize: 1468, windowsize: 4, tsize: 0 }));
  const oack = await c.next();
  assert.equal(oack.op, Opcode.OACK);
  truncateSync(join(root.root, 'shrinks.bin'), 1_000_000);
  c.ack(0);
  const original = root.files['shrinks.bin']!;
  let got = 0;
  for (;;) {
    const p = await c.next();
    if (p.op === Opcode.ERROR) {
      assert.match(p.message, /changed/);
      break;
    }
    assert.equal(p.op, Opcode.DATA);
    if (p.op !== Opcode.DATA) break;
    const off = (p.block - 1) * 1468;
    assert.ok(Buffer.from(p.data).equals(original.subarray(off, off + p.data.length)), 'bytes are right');
    got = Math.max(got, p.block);
    if (p.block % 4 === 0) c.ack(p.block);
  }
  assert.ok(got * 1468 < SIZE, 'the transfer did not get to the announced size');
  await waitFor(() => server.stats().failed === 1, 'the transfer to end as failed');
});
