/**
 * Retransmission with a timeout learnt from the transfer's own round trips, driven packet by packet
 * with a raw client: a lost block comes again long before the configured timeout; a short learnt
 * timeout does not make the server give up sooner than retries × timeout; a client that set the
 * RFC 2349 timeout option gets exactly that interval.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Opcode, type TftpPacket } from '../../src/protocols/tftp/packet.js';
import { makeRoot, RawClient, type Root, rrq, serve, sha256, waitFor } from './tftp-helpers.js';

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

async function setup(options: Parameters<typeof serve>[1]) {
  const s = await serve(root.root, options);
  servers.push(s.server);
  const c = await RawClient.open();
  clients.push(c);
  return { ...s, c };
}

function data(p: TftpPacket): { block: number; data: Uint8Array } {
  assert.equal(p.op, Opcode.DATA, `expected DATA, got ${JSON.stringify(p)}`);
  return p as { block: number; data: Uint8Array };
}

/** Lockstep through blocks `from`..`to`, answering each at once; repeats of taken blocks are dropped. */
async function lockstep(c: RawClient, from: number, to: number, parts: Uint8Array[]): Promise<void> {
  for (let b = from; b <= to; ) {
    const d = data(await c.next());
    if (d.block < b) continue;
    assert.equal(d.block, b);
    parts.push(Buffer.from(d.data));
    c.ack(b);
    b++;
  }
}

test('a lost block is sent again after the measured round trip, not the configured timeout', async () => {
  const { c, port, server } = await setup({ timeoutMs: 5000 });
  const parts: Uint8Array[] = [];
  c.sendTo(port, rrq('undionly.kpxe')); // 100000 bytes: 196 blocks of 512
  await lockstep(c, 1, 50, parts);
  // Block 51 "is lost": not acknowledged.
  const first = data(await c.next());
  assert.equal(first.block, 51);
  const t0 = performance.now();
  const again = data(await c.next(3000));
  const waited = performance.now() - t0;
  assert.equal(again.block, 51);
  assert.ok(waited < 1000, `repeated after ${waited.toFixed(0)} ms; the configured timeout is 5000`);
  assert.ok(waited >= 40, `repeated after ${waited.toFixed(0)} ms, under the 50 ms floor`);
  parts.push(Buffer.from(again.data));
  c.ack(51);
  await lockstep(c, 52, 196, parts);
  assert.equal(sha256(Buffer.concat(parts)), sha256(root.files['undionly.kpxe']!));
  await waitFor(() => server.stats().completed === 1, 'completion');
  assert.ok(server.stats().retransmits >= 1);
});

test("duplicate ACKs never make the server send: every repeated block is a timer's (Sorcerer's Apprentice)", async () => {
  const { c, port, server } = await setup({ timeoutMs: 10_000 });
  c.sendTo(port, rrq('undionly.kpxe'));
  const parts: Uint8Array[] = [];
  let repeats = 0;
  for (let expected = 1; expected <= 196; ) {
    const d = data(await c.next());
    if (d.block < expected) {
      // Only a timer may repeat a block (this process was slower than the learnt timeout).
      repeats++;
      continue;
    }
    assert.equal(d.block, expected);
    parts.push(d.data);
    c.ack(d.block);
    c.ack(d.block);
    expected++;
  }
  assert.equal(sha256(Buffer.concat(parts)), sha256(root.files['undionly.kpxe']!));
  await waitFor(() => server.stats().completed === 1, 'completion');
  const s = server.stats();
  assert.ok(s.duplicateAcks > 190, `duplicate ACKs counted: ${s.duplicateAcks}`);
  assert.equal(repeats, s.retransmits, 'no repeat without a timer retransmission');
  assert.ok(s.retransmits < 10, `retransmits ${s.retransmits}: the duplicates were answered`);
});

test('a short learnt timeout does not abandon a transfer before retries × the configured timeout', async () => {
  const { c, port, server } = await setup({ timeoutMs: 300, retries: 3 });
  c.sendTo(port, rrq('undionly.kpxe'));
  await lockstep(c, 1, 30, []);
  const lastAck = performance.now();
  let copies = 0;
  for (;;) {
    const p = await c.next(10_000);
    if (p.op === Opcode.ERROR) break;
    assert.equal(data(p).block, 31);
    copies++;
  }
  const silent = performance.now() - lastAck;
  assert.ok(silent >= 900, `abandoned ${silent.toFixed(0)} ms after the last ACK, before 3 × 300 ms`);
  assert.ok(silent < 8000, `abandoned only after ${silent.toFixed(0)} ms`);
  assert.ok(copies >= 4, `block 31 sent ${copies} times: the first and at least 3 retransmissions`);
  await waitFor(() => server.stats().timedOut === 1, 'the transfer to be abandoned');
});

test('a client-set timeout (RFC 2349) is a fixed interval, whatever the round trips measure', async () => {
  const { c, port } = await setup({ timeoutMs: 60_000 });
  c.sendTo(port, rrq('undionly.kpxe', { timeout: 1 }));
  assert.equal((await c.next()).op, Opcode.OACK);
  c.ack(0);
  await lockstep(c, 1, 20, []);
  assert.equal(data(await c.next()).block, 21);
  const t0 = performance.now();
  assert.equal(data(await c.next(3000)).block, 21);
  const waited = performance.now() - t0;
  assert.ok(waited >= 900 && waited < 2500, `repeated after ${waited.toFixed(0)} ms, asked for 1 s`);
  c.send({ op: Opcode.ERROR, code: 0, message: 'done' });
});
