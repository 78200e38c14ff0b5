/**
 * The rack's boot HTTP server (:5248): iPXE scripts, kernels, initrds, squashfs, and everything TFTP
 * serves, at the same paths. Built on node:http, not koa: every request is one lookup and one file.
 * It asks a BootResolver what a path is (servers ask, policy answers) and only carries bytes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isKilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { listenReusePort, type ReusePortMode } from '../native/index.js';
import type { BootResolver, BootSource } from './boot-source.js';
import { type ServeFileOptions, serveFile } from './file-http.js';

export interface BootHttpServerOptions extends Omit<ServeFileOptions, 'contentType'> {
  resolver: BootResolver;
  logger: Logger;
  /** Idle time allowed between requests on a keep-alive connection. */
  keepAliveTimeoutMs?: number;
}

export interface BootHttpListen {
  host: string;
  port: number;
  /** A listening socket made elsewhere (e.g. reusePortSocket in a rack worker); host/port are then for logs. */
  fd?: number;
  /** Share the port with other processes (rack.workers > 1); see listenReusePort. */
  reusePort?: boolean;
}

const TEXT = 'text/plain; charset=utf-8';

/** The path as sent, without query or fragment; absolute-form targets (RFC 9112 §3.2.2) lose scheme and authority. */
export function requestPath(target: string): string {
  let path = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(path);
  if (abs) path = path.slice(abs[0].length) || '/';
  const cut = path.search(/[?#]/);
  return cut < 0 ? path : path.slice(0, cut);
}

/** IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d; policy wants a.b.c.d. */
function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

export class BootHttpServer {
  readonly server: Server;
  private readonly opts: BootHttpServerOptions;
  private readonly log: Logger;

  constructor(opts: BootHttpServerOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.server = createServer({ keepAliveTimeout: opts.keepAliveTimeoutMs ?? 15_000 }, (req, res) => {
      this.handle(req, res).catch((err) => {
        this.log.error({ err, path: req.url }, 'boot http: request failed');
        if (!res.headersSent) this.answer(res, 500, 'internal error\n');
        else res.destroy();
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Malformed requests are the client's problem: debug, a 400 if the socket still takes one.
      this.log.debug(
        { err: err.message, code: err.code, remote: socket.remoteAddress },
        'boot http: bad request',
      );
      if (socket.writable && err.code !== 'ECONNRESET') {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else {
        socket.destroy();
      }
    });
  }

  /** Start listening. Resolves with the bound address and how the port is shared. */
  async start(
    listen: BootHttpListen,
  ): Promise<{ address: string; port: number; mode: ReusePortMode | 'fd' }> {
    let mode: ReusePortMode | 'fd';
    if (listen.fd !== undefined) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ fd: listen.fd }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      mode = 'fd';
    } else if (listen.reusePort) {
      mode = await listenReusePort(this.server, listen.host, listen.port);
    } else {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ host: listen.host, port: listen.port }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
      mode = 'plain';
    }
    const a = this.server.address() as AddressInfo;
    this.log.info({ address: a.address, port: a.port, mode }, 'boot http listening');
    return { address: a.address, port: a.port, mode };
  }

  /**
   * Stop accepting, close idle keep-alive connections, let transfers in flight finish for up to
   * `graceMs`, then cut the rest.
   */
  async close(graceMs = 5_000): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  }

  private answer(
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    const buf = Buffer.from(body);
    res.writeHead(status, { 'Content-Type': TEXT, 'Content-Length': buf.length, ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : buf);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? '';
    const path = requestPath(req.url ?? '/');
    const fields = {
      method,
      path,
      remote: plainAddress(req.socket.remoteAddress),
      ua: req.headers['user-agent'],
    };
    const done = (status: number, extra: Record<string, unknown> = {}) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.log.debug({ ...fields, status, ms, ...extra }, 'boot http request');
    };

    if (method !== 'GET' && method !== 'HEAD') {
      this.answer(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      done(405);
      return;
    }
    const source: BootSource | null = await this.opts.resolver.resolve({
      path,
      protocol: 'http',
      remoteAddress: plainAddress(req.socket.remoteAddress),
      remotePort: req.socket.remotePort ?? 0,
      localAddress: plainAddress(req.socket.localAddress),
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
    });
    if (source === null) {
      this.answer(res, 404, 'not found\n');
      done(404);
      return;
    }
    if (source.kind === 'content') {
      // Rendered per machine and per moment (the purpose changes as it boots): never cached.
      res.writeHead(200, {
        'Content-Type': source.contentType ?? TEXT,
        'Content-Length': source.body.length,
        'Cache-Control': 'no-store',
      });
      res.end(method === 'HEAD' ? undefined : source.body);
      done(200, { bytes: method === 'HEAD' ? 0 : source.body.length, via: 'content' });
      return;
    }
    try {
      const r = await serveFile(req, res, source.path, {
        ...this.opts,
        ...(source.contentType ? { contentType: source.contentType } : {}),
      });
      if (r.error) {
        // A client that goes away mid-download is routine (iPXE cancels, OVMF reads the size).
        this.log.debug(
          { ...fields, status: r.status, bytes: r.bytes, via: r.via, err: r.error.message },
          'boot http: transfer cut short',
        );
        return;
      }
      done(r.status, { bytes: r.bytes, via: r.via });
    } catch (err) {
      if (isKilnError(err, 'KILN_ERR_NOT_FOUND')) {
        // The resolver named a file that is gone (evicted from the cache between lookup and open).
        this.answer(res, 404, 'not found\n');
        done(404, { file: source.path });
        return;
      }
      throw err;
    }
  }
}
