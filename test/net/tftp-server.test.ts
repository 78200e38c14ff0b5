/**
 * The server's protocol behaviour, driven packet by packet with a raw UDP client: OVMF's size probe,
 * duplicate ACKs, partial window ACKs, retransmission, rollover on the wire, bad input.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BootResolver } from '../../src/net/boot-source.js';
import { Opcode, type TftpPacket } from '../../src/protocols/tftp/packet.js';
import { LEVEL, makeRoot, RawClient, type Root, rrq, serve, sha256, waitFor } from './tftp-helpers.js';

let root: Root;
const servers: { close(): Promise<void> }[] = [];
const clients: RawClient[] = [];

before(() => {
  root = makeRoot();
});
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  root.cleanup();
});

async function setup(options: Parameters<typeof serve>[1] = {}, resolver?: BootResolver) {
  const s = await serve(resolver ?? root.root, options);
  servers.push(s.server);
  const c = await RawClient.open();
  clients.push(c);
  return { ...s, c };
}

function expectOp<O extends TftpPacket['op']>(p: TftpPacket, op: O): Extract<TftpPacket, { op: O }> {
  assert.equal(p.op, op, `expected opcode ${op}, got ${JSON.stringify(p)}`);
  return p as Extract<TftpPacket, { op: O }>;
}

/**
 * Download in lockstep or windows, acknowledging each window's last block. Blocks must arrive in
 * order; a repeat of blocks already taken (the server's learnt timeout fired before our ACK got
 * there: with hundreds of transfers this one process is a slow client) is dropped, as real clients
 * drop it.
 */
async function download(c: RawClient, blksize: number, windowsize: number, from = 1): Promise<Buffer> {
  c.ack(from - 1);
  const parts: Uint8Array[] = [];
  let expected = from;
  let inWindow = 0;
  for (;;) {
    const d = expectOp(await c.next(), Opcode.DATA);
    if (d.block !== expected % 65536) {
      const behind = (expected - d.block + 65536) % 65536;
      assert.ok(behind >= 1 && behind <= windowsize, `block ${d.block} out of order, expected ${expected}`);
      continue;
    }
    parts.push(Buffer.from(d.data));
    expected++;
    inWindow++;
    const short = d.data.length < blksize;
    if (short || inWindow === windowsize) {
      c.ack((expected - 1) % 65536);
      inWindow = 0;
    }
    if (short) return Buffer.concat(parts);
  }
}

test('OVMF: tsize probe aborted with error 8 after the OACK ends quietly, then the real request works', async () => {
  const { c, port, server, logs } = await setup();
  const file = root.files['undionly.kpxe']!;
  c.sendTo(port, rrq('undionly.kpxe', { tsize: 0, blksize: 1468, windowsize: 4 }));
  const oack = expectOp(await c.next(), Opcode.OACK);
  assert.deepEqual(
    oack.options.map((o) => `${o.name}=${o.value}`),
    [`tsize=${file.length}`, 'blksize=1468', 'windowsize=4'],
  );
  c.send({ op: Opcode.ERROR, code: 8, message: 'User aborted the transfer' });
  await waitFor(() => server.stats().clientEnded === 1, 'the probe to end');
  assert.equal(server.stats().active, 0);
  assert.deepEqual(
    logs.filter((l) => l.level >= LEVEL.warn),
    [],
    'no warning or error for a size probe',
  );

  const c2 = await RawClient.open();
  clients.push(c2);
  c2.sendTo(port, rrq('undionly.kpxe', { blksize: 1468, windowsize: 4 }));
  expectOp(await c2.next(), Opcode.OACK);
  assert.equal(sha256(await download(c2, 1468, 4)), sha256(file));
  await waitFor(() => server.stats().completed === 1, 'the transfer to complete');
});

test('each transfer answers from its own port, not the server port', async () => {
  const { c, port } = await setup();
  c.sendTo(port, rrq('exact.bin'));
  await c.next();
  assert.notEqual(c.tid, port);
});

// Duplicate ACKs and the learnt retransmission timeout: tftp-retransmit.test.ts.

test('a partial window ACK rolls back to the block after it (RFC 7440)', async () => {
  const { c, port } = await setup({ timeoutMs: 10_000 });
  c.sendTo(port, rrq('exact.bin', { blksize: 1468, windowsize: 4 }));
  expectOp(await c.next(), Opcode.OACK);
  c.ack(0);
  const blocks = async (k: number) => {
    const got: number[] = [];
    for (let i = 0; i < k; i++) got.push(expectOp(await c.next(), Opcode.DATA).block);
    return got;
  };
  assert.deepEqual(await blocks(4), [1, 2, 3, 4]);
  c.ack(2); // the client lost block 3
  assert.deepEqual(await blocks(4), [3, 4, 5, 6]);
  c.ack(6);
  assert.deepEqual(await blocks(3), [7, 8, 9]); // 8 full blocks + the empty last one
  c.ack(9);
});

test('unanswered blocks are retransmitted, then the transfer is abandoned after the retry limit', async () => {
  const { c, port, server } = await setup({ timeoutMs: 100, retries: 2 });
  c.sendTo(port, rrq('exact.bin'));
  for (let i = 0; i < 3; i++) assert.equal(expectOp(await c.next(), Opcode.DATA).block, 1);
  const err = expectOp(await c.next(), Opcode.ERROR);
  assert.equal(err.code, 0);
  await waitFor(() => server.stats().timedOut === 1, 'the transfer to be abandoned');
  assert.equal(server.stats().active, 0);
});

test('the client timeout option sets the retransmission interval', async () => {
  const { c, port } = await setup({ timeoutMs: 60_000 });
  c.sendTo(port, rrq('exact.bin', { timeout: 1 }));
  const oack = expectOp(await c.next(), Opcode.OACK);
  assert.deepEqual(oack.options, [{ name: 'timeout', value: '1' }]);
  // Not acknowledged: repeated after 1 s, not after the server's 60 s.
  expectOp(await c.next(2500), Opcode.OACK);
});

test('block numbers wrap from 65535 to 0 on the wire', async () => {
  const blocks = 65536 + 10;
  const body = Buffer.alloc(blocks * 8 - 3, 7);
  const resolver: BootResolver = { resolve: async () => ({ kind: 'content', body }) };
  const { c, port } = await setup({}, resolver);
  c.sendTo(port, rrq('rendered', { blksize: 8, windowsize: 64, tsize: 0 }));
  const oack = expectOp(await c.next(), Opcode.OACK);
  assert.ok(oack.options.some((o) => o.name === 'tsize' && o.value === String(body.length)));
  const got = await download(c, 8, 64);
  assert.equal(got.length, body.length);
  assert.ok(got.equals(body));
});

test('rendered content is served with tsize equal to its length', async () => {
  const body = Buffer.from('#!ipxe\nchain http://10.0.0.1:5248/boot/52-54-00-12-34-56.ipxe\n');
  const seen: unknown[] = [];
  const resolver: BootResolver = {
    resolve: async (req) => {
      seen.push(req);
      return { kind: 'content', body };
    },
  };
  const { c, port } = await setup({}, resolver);
  c.sendTo(port, rrq('boot.ipxe', { tsize: 0, blksize: 1432 }));
  const oack = expectOp(await c.next(), Opcode.OACK);
  assert.deepEqual(oack.options, [
    { name: 'tsize', value: String(body.length) },
    { name: 'blksize', value: '1432' },
  ]);
  assert.ok((await download(c, 1432, 1)).equals(body));
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], {
    path: 'boot.ipxe',
    protocol: 'tftp',
    remoteAddress: '127.0.0.1',
    remotePort: c.socket.address().port,
    localAddress: '127.0.0.1',
  });
});

test('a resolver that throws gives error 0 and an error log; the server goes on', async () => {
  let calls = 0;
  const resolver: BootResolver = {
    resolve: async () => {
      calls++;
      if (calls === 1) throw new Error('region unreachable');
      return { kind: 'content', body: Buffer.from('ok') };
    },
  };
  const { c, port, logs } = await setup({}, resolver);
  c.sendTo(port, rrq('a'));
  assert.equal(expectOp(await c.next(), Opcode.ERROR).code, 0);
  assert.ok(logs.some((l) => l.level === LEVEL.error && /resolver failed/.test(l.msg)));
  const c2 = await RawClient.open();
  clients.push(c2);
  c2.sendTo(port, rrq('b'));
  assert.deepEqual(Buffer.from(expectOp(await c2.next(), Opcode.DATA).data), Buffer.from('ok'));
  c2.ack(1);
});

test('malformed packets and stray DATA/ACK on the server port are dropped; the server keeps serving', async () => {
  const { c, port, logs, server } = await setup();
  for (const junk of [
    Buffer.from([0]),
    Buffer.from([0, 9, 1, 2]),
    Buffer.from([0, 1, 0x41]),
    Buffer.from([0, 4, 0, 1]),
  ]) {
    c.sendTo(port, junk);
  }
  c.sendTo(port, rrq('exact.bin', { blksize: 1468 }));
  expectOp(await c.next(), Opcode.OACK);
  assert.equal(sha256(await download(c, 1468, 1)), sha256(root.files['exact.bin']!));
  await waitFor(() => server.stats().completed === 1, 'completion');
  assert.equal(logs.filter((l) => l.level === LEVEL.debug && /dropped/.test(l.msg)).length, 4);
  assert.equal(server.stats().started, 1);
});

test('a repeated RRQ from the same port does not start a second transfer', async () => {
  const { c, port, server } = await setup({ timeoutMs: 10_000 });
  c.sendTo(port, rrq('exact.bin'));
  c.sendTo(port, rrq('exact.bin'));
  assert.equal(expectOp(await c.next(), Opcode.DATA).block, 1);
  assert.equal(server.stats().started, 1);
  assert.equal(sha256(await download(c, 512, 1, 2)), sha256(root.files['exact.bin']!.subarray(512)));
});

test('mail mode is an illegal operation', async () => {
  const { c, port } = await setup();
  c.sendTo(port, rrq('exact.bin', {}, 'mail'));
  assert.equal(expectOp(await c.next(), Opcode.ERROR).code, 4);
});

test('hundreds of transfers at once all complete intact', async () => {
  const { port, server } = await setup();
  const n = 300;
  const file = root.files['undionly.kpxe']!;
  const cs = await Promise.all(Array.from({ length: n }, () => RawClient.open()));
  clients.push(...cs);
  const req = rrq('undionly.kpxe', { blksize: 1468, windowsize: 8 });
  for (const c of cs) c.sendTo(port, req);
  // Like real clients, repeat the request when no answer comes: a burst of 300 requests can
  // overflow a socket buffer on a host with a small net.core.rmem_max.
  await Promise.all(
    cs.map(async (c) => {
      for (let attempt = 0; ; attempt++) {
        try {
          expectOp(await c.next(1000), Opcode.OACK);
          return;
        } catch (err) {
          if (attempt === 5) throw err;
          c.sendTo(port, req);
        }
      }
    }),
  );
  assert.equal(server.stats().active, n, 'all transfers running at once');
  const got = await Promise.all(cs.map((c) => download(c, 1468, 8)));
  for (const g of got) assert.equal(sha256(g), sha256(file));
  await waitFor(() => server.stats().completed === n, 'completion');
});

test('closing the server ends running transfers with an error to the client', async () => {
  const { c, port, server } = await setup({ timeoutMs: 10_000 });
  c.sendTo(port, rrq('big.bin'));
  expectOp(await c.next(), Opcode.DATA);
  await server.close();
  assert.equal(expectOp(await c.next(), Opcode.ERROR).code, 0);
  assert.equal(server.stats().active, 0);
});

test('a file replaced on disk is served new on the next request, even while shared', async () => {
  const { writeFileSync, renameSync } = await import('node:fs');
  const { join } = await import('node:path');
  const path = join(root.root, 'swap.bin');
  const a = Buffer.alloc(3000, 1);
  const b = Buffer.alloc(5000, 2);
  writeFileSync(path, a);
  const { c, port } = await setup({ timeoutMs: 10_000 });
  c.sendTo(port, rrq('swap.bin', { blksize: 1468 }));
  expectOp(await c.next(), Opcode.OACK);
  // While the first transfer still holds the old bytes, the file is replaced the way the image
  // cache does it (write elsewhere, rename into place).
  writeFileSync(`${path}.new`, b);
  renameSync(`${path}.new`, path);
  const c2 = await RawClient.open();
  clients.push(c2);
  c2.sendTo(port, rrq('swap.bin', { blksize: 1468 }));
  expectOp(await c2.next(), Opcode.OACK);
  assert.ok((await download(c, 1468, 1)).equals(a));
  assert.ok((await download(c2, 1468, 1)).equals(b));
});
