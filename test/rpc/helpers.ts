import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { silentLogger } from '../../src/lib/logger.js';
import { RpcChannel } from '../../src/rpc/channel.js';
import { FramedConnection } from '../../src/rpc/framed.js';
import { HandlerRegistry } from '../../src/rpc/handlers.js';
import { performHandshake } from '../../src/rpc/handshake.js';

export interface Pair {
  region: RpcChannel;
  rack: RpcChannel;
  regionHandlers: HandlerRegistry;
  rackHandlers: HandlerRegistry;
  close(): Promise<void>;
}

/** A handshaken region/rack channel pair over plain TCP on loopback (channel logic, not TLS). */
export async function channelPair(opts: { rackSecret?: Buffer; rackVersion?: number } = {}): Promise<Pair> {
  const secret = randomBytes(32);
  const regionHandlers = new HandlerRegistry('region');
  const rackHandlers = new HandlerRegistry('rack');
  const sockets: Socket[] = [];
  let server: Server | undefined;
  const serverSide = new Promise<Socket>((resolve) => {
    server = createServer((s) => {
      sockets.push(s);
      resolve(s);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server!.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  client.setNoDelay(true);
  sockets.push(client);
  const srv = await serverSide;
  srv.setNoDelay(true);
  const a = new FramedConnection(srv);
  const b = new FramedConnection(client);
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server!.close(() => r()));
  };
  try {
    const [ha, hb] = await Promise.all([
      performHandshake(a, {
        role: 'region',
        secret,
        software: 'test',
        worker: { id: 'h:pid=1', host: 'h', pid: 1 },
      }),
      performHandshake(b, {
        role: 'rack',
        secret: opts.rackSecret ?? secret,
        software: 'test',
        hostname: 'rack1',
        ...(opts.rackVersion !== undefined ? { version: opts.rackVersion } : {}),
      }),
    ]);
    return {
      region: new RpcChannel({
        conn: a,
        handlers: regionHandlers,
        logger: silentLogger,
        peerVersion: ha.peerVersion,
      }),
      rack: new RpcChannel({
        conn: b,
        handlers: rackHandlers,
        logger: silentLogger,
        peerVersion: hb.peerVersion,
      }),
      regionHandlers,
      rackHandlers,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
