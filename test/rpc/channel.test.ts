import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { z } from 'zod';
import { NotFoundError } from '../../src/lib/errors.js';
import { defineCommand } from '../../src/rpc/command.js';
import { Identify, Ping, RegisterRack } from '../../src/rpc/commands/index.js';
import { channelPair } from './helpers.js';

const Slow = defineCommand({
  name: 'Slow',
  servedBy: 'region',
  since: 1,
  summary: 'test: answers after ms, or never',
  args: z.strictObject({ ms: z.number() }),
  result: z.object({ waited: z.number() }),
  errors: [],
});
const Future = defineCommand({ ...Slow, name: 'Future', since: 99 });

test('many calls in flight on one connection, both directions, answers matched by id', async (t) => {
  const p = await channelPair();
  t.after(() => p.close());
  p.regionHandlers.register(Ping, (a) => ({ echo: a.echo, time: 1 }));
  p.regionHandlers.register(Slow, async (a) => {
    await new Promise((r) => setTimeout(r, a.ms));
    return { waited: a.ms };
  });
  p.rackHandlers.register(Identify, () => ({ system_id: 'abc123', hostname: 'rack1', version: 'test' }));
  const calls = Array.from({ length: 500 }, (_, i) => p.rack.call(Ping, { echo: i }));
  const slow = p.rack.call(Slow, { ms: 30 });
  const fast = await Promise.all(calls);
  assert.deepEqual(
    fast.map((r) => r.echo),
    Array.from({ length: 500 }, (_, i) => i),
  );
  assert.deepEqual(await slow, { waited: 30 });
  assert.equal((await p.region.call(Identify, {})).system_id, 'abc123');
});

test('timeouts, cancellation, unknown commands, bad arguments and typed remote errors', async (t) => {
  const p = await channelPair();
  t.after(() => p.close());
  let cancelledOnServer = false;
  p.regionHandlers.register(Slow, (_a, ctx) => {
    return new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => {
        cancelledOnServer = true;
        resolve({ waited: -1 });
      });
    });
  });
  p.regionHandlers.register(RegisterRack, () => {
    throw new NotFoundError('no such rack', { system_id: 'zzz' });
  });
  await assert.rejects(p.rack.call(Slow, { ms: 0 }, { timeout: 50 }), { code: 'KILN_ERR_RPC_TIMEOUT' });
  const ac = new AbortController();
  const pending = p.rack.call(Slow, { ms: 0 }, { signal: ac.signal, timeout: 0 });
  ac.abort();
  await assert.rejects(pending, { code: 'KILN_ERR_RPC_CANCELLED' });
  const deadline = Date.now() + 5000;
  while (!cancelledOnServer && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.ok(cancelledOnServer, 'the handler saw the cancel');

  await assert.rejects(p.rack.call(Ping, {}), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'KILN_ERR_RPC_UNKNOWN_COMMAND');
    assert.match(e.message, /unknown RPC command "Ping"/);
    return true;
  });
  await assert.rejects(p.rack.call(Slow, { ms: 'x' } as never), { code: 'KILN_ERR_RPC_BAD_ARGS' });
  await assert.rejects(
    p.rack.call(RegisterRack, { system_id: 'zzz', hostname: 'h', name: null, version: '1', interfaces: [] }),
    (e: { code: string; details: unknown }) => {
      assert.equal(e.code, 'KILN_ERR_NOT_FOUND');
      assert.deepEqual(e.details, { system_id: 'zzz' });
      return true;
    },
  );
  // A command newer than the peer fails locally with a version error.
  await assert.rejects(p.rack.call(Future, { ms: 0 }), { code: 'KILN_ERR_RPC_VERSION' });
  // After all that, the connection still serves.
  p.regionHandlers.register(Ping, () => ({ time: 2 }));
  assert.equal((await p.rack.call(Ping, {})).time, 2);
});

test('a closed connection fails pending calls with KILN_ERR_RPC_CLOSED', async (t) => {
  const p = await channelPair();
  t.after(() => p.close());
  p.regionHandlers.register(Slow, () => new Promise(() => {}));
  const pending = p.rack.call(Slow, { ms: 0 }, { timeout: 0 });
  p.region.destroy();
  await assert.rejects(pending, { code: 'KILN_ERR_RPC_CLOSED' });
  await assert.rejects(p.rack.call(Slow, { ms: 0 }), { code: 'KILN_ERR_RPC_CLOSED' });
});

test('handshake: a wrong secret is refused on both sides', async () => {
  await assert.rejects(channelPair({ rackSecret: randomBytes(32) }), { code: 'KILN_ERR_RPC_AUTH' });
});

test('handshake: an incompatible protocol version is refused with a version error', async () => {
  await assert.rejects(channelPair({ rackVersion: 0 }), { code: 'KILN_ERR_RPC_VERSION' });
});
