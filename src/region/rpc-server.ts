import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { listenReusePort, type ReusePortMode } from '../native/index.js';
import type { CallOptions } from '../rpc/channel.js';
import { RpcChannel } from '../rpc/channel.js';
import type { ArgsOf, Command, ResultOf } from '../rpc/command.js';
import { RpcCodes, RpcError } from '../rpc/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame } from '../rpc/frame.js';
import { FramedConnection } from '../rpc/framed.js';
import type { HandlerRegistry } from '../rpc/handlers.js';
import { performHandshake, type WorkerIdentity } from '../rpc/handshake.js';
import type { RegionSecrets } from './secrets.js';

/** What the region knows about one authenticated rack connection; handlers see it as ctx.peer. */
export interface RackPeer extends Record<string, unknown> {
  connection_id: string;
  remote_address: string;
  hostname?: string;
  /** Set by RegisterRack. */
  rack_id?: number;
  system_id?: string;
}

export interface RackLink {
  peer: RackPeer;
  channel: RpcChannel;
}

export interface RegionRpcServerOptions {
  host: string;
  port: number;
  secrets: RegionSecrets;
  worker: WorkerIdentity;
  handlers: HandlerRegistry;
  logger: Logger;
  software: string;
  maxFrameBytes?: number;
  handshakeTimeoutMs?: number;
  /** Called when a link closes (to drop its connection record). */
  onLinkClosed?: (link: RackLink) => void;
}

/** TLS records start with content type 22 (handshake) for a ClientHello (RFC 8446 §5.1). */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * The region worker's RPC listener: TLS only, then the HMAC handshake, then a channel serving the
 * worker's handlers. A client that does not start with a TLS ClientHello (plain TCP, garbage) is
 * told in one plain frame that this port needs TLS, then closed; nothing else is served to it.
 */
export class RegionRpcServer {
  readonly links = new Set<RackLink>();
  private readonly server: Server;
  private readonly ctx: SecureContext;
  private readonly sockets = new Set<Socket>();
  private readonly opts: RegionRpcServerOptions;
  private closing = false;

  constructor(opts: RegionRpcServerOptions) {
    this.opts = opts;
    this.ctx = createSecureContext({
      cert: opts.secrets.serverCert,
      key: opts.secrets.serverKey,
      minVersion: 'TLSv1.2',
    });
    this.server = createServer((s) => this.accept(s));
    this.server.on('error', (err) => opts.logger.error({ err }, 'RPC server error'));
  }

  /** Bind with SO_REUSEPORT where available so every worker shares the port. */
  listen(): Promise<ReusePortMode> {
    return listenReusePort(this.server, this.opts.host, this.opts.port);
  }

  address(): { address: string; port: number } {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('RPC server is not listening');
    return { address: a.address, port: a.port };
  }

  /** A live, registered link to the rack, if this worker holds one. */
  linkTo(systemId: string): RackLink | undefined {
    for (const l of this.links) if (l.peer.system_id === systemId && !l.channel.closed) return l;
    return undefined;
  }

  /** region → rack call over this worker's connection to that rack. */
  callRack<C extends Command>(
    systemId: string,
    command: C,
    args: ArgsOf<C>,
    opts?: CallOptions,
  ): Promise<ResultOf<C>> {
    const link = this.linkTo(systemId);
    if (!link) {
      return Promise.reject(
        new RpcError(RpcCodes.notConnected, `rack ${systemId} holds no connection to this region worker`),
      );
    }
    return link.channel.call(command, args, opts);
  }

  /** Stop accepting, close every connection (racks reconnect to the other workers). */
  async close(): Promise<void> {
    this.closing = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const l of this.links) l.channel.close();
      for (const s of this.sockets) s.end();
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 1000).unref();
    });
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const log = this.opts.logger;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ remote, err: err.message }, 'RPC socket error'));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 15_000);
    // Nobody gets to hold a socket open without completing the handshake.
    const timeoutMs = this.opts.handshakeTimeoutMs ?? 15_000;
    socket.setTimeout(timeoutMs, () => {
      log.info({ remote }, 'RPC client did not complete the handshake in time; closing');
      socket.destroy();
    });
    socket.once('data', (first: Buffer) => {
      socket.pause();
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        log.info({ remote }, 'RPC client did not start TLS (plain TCP or garbage); refused');
        socket.end(
          encodeFrame({
            t: 'fail',
            code: 'KILN_ERR_RPC_TLS_REQUIRED',
            message: 'this is the kiln region RPC port: connect with TLS',
          }),
        );
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      // Put the byte back: TLSSocket reads what the plain socket already buffered.
      socket.unshift(first);
      const tls = new TLSSocket(socket, { isServer: true, secureContext: this.ctx });
      tls.on('error', (err) => {
        log.debug({ remote, err: err.message }, 'RPC TLS error');
        socket.destroy();
      });
      tls.once('secure', () => void this.authenticate(tls, socket, remote));
    });
  }

  private async authenticate(tls: TLSSocket, raw: Socket, remote: string): Promise<void> {
    const log = this.opts.logger;
    const conn = new FramedConnection(tls, this.opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    let hs: Awaited<ReturnType<typeof performHandshake>>;
    try {
      hs = await performHandshake(conn, {
        role: 'region',
        secret: this.opts.secrets.secret,
        software: this.opts.software,
        worker: this.opts.worker,
        timeoutMs: this.opts.handshakeTimeoutMs ?? 15_000,
      });
    } catch (err) {
      const code = err instanceof KilnError ? err.code : 'unknown';
      const msg = err instanceof Error ? err.message : String(err);
      if (code === RpcCodes.auth) log.warn({ remote, code }, `rack RPC authentication failed: ${msg}`);
      else log.info({ remote, code }, `rack RPC handshake failed: ${msg}`);
      return;
    }
    raw.setTimeout(0);
    const peer: RackPeer = { connection_id: randomUUID(), remote_address: remote };
    if (hs.peerHostname) peer.hostname = hs.peerHostname;
    const channel = new RpcChannel({
      conn,
      handlers: this.opts.handlers,
      logger: log.child({ rack: hs.peerHostname ?? remote }),
      peerVersion: hs.peerVersion,
      peer,
    });
    const link: RackLink = { peer, channel };
    this.links.add(link);
    log.info({ remote, hostname: hs.peerHostname, version: hs.peerSoftware }, 'rack connected');
    channel.on('close', (error) => {
      this.links.delete(link);
      log.info({ remote, system_id: peer.system_id, reason: error?.message }, 'rack connection closed');
      this.opts.onLinkClosed?.(link);
    });
    if (this.closing) channel.close();
  }
}
