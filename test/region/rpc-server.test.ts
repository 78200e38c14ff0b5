import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { after, before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { z } from 'zod';
import { silentLogger } from '../../src/lib/logger.js';
import { connectToRegion } from '../../src/rack/region-connection.js';
import { ensureRegionSecrets, type RegionSecrets } from '../../src/region/secrets.js';
import { type RegionWorker, startRegionWorker } from '../../src/region/worker.js';
import { defineCommand } from '../../src/rpc/command.js';
import { Ping } from '../../src/rpc/commands/index.js';
import { decodeFrames, encodeFrame, FrameDecoder } from '../../src/rpc/frame.js';
import { FramedConnection } from '../../src/rpc/framed.js';
import { HandlerRegistry } from '../../src/rpc/handlers.js';
import { performHandshake } from '../../src/rpc/handshake.js';
import { testConfig } from './helpers.js';

let worker: RegionWorker;
let secrets: RegionSecrets;
let port: number;
let env: ReturnType<typeof testConfig>;

before(async () => {
  env = testConfig({ http: 0, rpc: 0 });
  secrets = (await ensureRegionSecrets(env.dataDir, silentLogger)).secrets;
  worker = await startRegionWorker({ config: env.config, logger: silentLogger });
  port = worker.rpcPort!;
});
after(async () => {
  await worker?.stop();
  env?.cleanup();
});

function rack(opts: { secret?: Buffer; version?: number } = {}) {
  return connectToRegion({
    host: '127.0.0.1',
    port,
    secret: opts.secret ?? secrets.secret,
    ca: secrets.caCert,
    hostname: 'test-rack',
    software: 'test',
    handlers: new HandlerRegistry('rack'),
    logger: silentLogger,
    ...(opts.version !== undefined ? { version: opts.version } : {}),
  });
}

async function stillServes(): Promise<void> {
  const c = await rack();
  try {
    assert.equal((await c.channel.call(Ping, { echo: 'ok' })).echo, 'ok');
  } finally {
    c.channel.destroy();
  }
}

/** Raw bytes in, everything the server says back until it closes. */
function rawExchange(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => s.write(bytes));
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
    setTimeout(() => s.destroy(new Error('server did not close')), 10_000).unref();
  });
}

test('a rack with the secret and the pinned CA is served; the handshake names the worker', async () => {
  const c = await rack();
  assert.equal(c.worker.id, worker.id);
  assert.equal(c.learnedCa, null);
  assert.equal(typeof (await c.channel.call(Ping, {})).time, 'number');
  c.channel.destroy();
});

test('first contact without a pinned CA learns the region CA', async () => {
  const c = await connectToRegion({
    host: '127.0.0.1',
    port,
    secret: secrets.secret,
    ca: null,
    hostname: 'new-rack',
    software: 'test',
    handlers: new HandlerRegistry('rack'),
    logger: silentLogger,
  });
  assert.equal(c.learnedCa?.replace(/\s/g, ''), secrets.caCert.replace(/\s/g, ''));
  c.channel.destroy();
});

test('a wrong secret is refused with an auth error; the server keeps serving', async () => {
  await assert.rejects(rack({ secret: randomBytes(32) }), { code: 'KILN_ERR_RPC_AUTH' });
  await stillServes();
});

test('plain TCP and garbage bytes get a clear "TLS required" frame, then close', async () => {
  const hello = encodeFrame({ t: 'hello', role: 'rack', v: 1, ch: randomBytes(16) });
  for (const bytes of [hello, Buffer.from('GET / HTTP/1.1\r\n\r\n'), randomBytes(64).fill(0x00, 0, 1)]) {
    const [answer] = decodeFrames(await rawExchange(bytes)) as Array<{
      t: string;
      code: string;
      message: string;
    }>;
    assert.equal(answer?.t, 'fail');
    assert.equal(answer?.code, 'KILN_ERR_RPC_TLS_REQUIRED');
    assert.match(answer!.message, /TLS/);
  }
  // Garbage that looks like a TLS record fails the TLS handshake and is closed.
  const tlsGarbage = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), randomBytes(32)]);
  await rawExchange(tlsGarbage);
  await stillServes();
});

test('an oversized frame after the handshake closes that connection only, with a clear error', async () => {
  const socket = await new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: secrets.caCert,
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
  const conn = new FramedConnection(socket);
  await performHandshake(conn, { role: 'rack', secret: secrets.secret, software: 'test', hostname: 'big' });
  const decoder = new FrameDecoder();
  const got: unknown[] = [];
  socket.on('data', (d) => got.push(...decoder.push(d)));
  const closed = new Promise((r) => socket.once('close', r));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(64 * 1024 * 1024);
  socket.write(header);
  await closed;
  assert.deepEqual(
    got.map((m) => (m as { code?: string }).code),
    ['KILN_ERR_RPC_FRAME_TOO_LARGE'],
  );
  await stillServes();
});

test('an unknown command is answered with a clear error and the connection goes on', async () => {
  const Nope = defineCommand({
    name: 'NoSuchCommand',
    servedBy: 'region',
    since: 1,
    summary: 'test',
    args: z.strictObject({}),
    result: z.object({}),
    errors: [],
  });
  const c = await rack();
  await assert.rejects(c.channel.call(Nope, {}), {
    code: 'KILN_ERR_RPC_UNKNOWN_COMMAND',
    message: /unknown RPC command "NoSuchCommand"/,
  });
  assert.ok((await c.channel.call(Ping, {})).time > 0);
  c.channel.destroy();
});

test('a version mismatch is refused in the handshake with a version error', async () => {
  await assert.rejects(rack({ version: 0 }), (e: { code: string; message: string }) => {
    assert.equal(e.code, 'KILN_ERR_RPC_VERSION');
    assert.match(e.message, /version/);
    return true;
  });
  await stillServes();
});
