import { X509Certificate } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { RpcChannel } from '../rpc/channel.js';
import { RpcCodes, RpcError } from '../rpc/errors.js';
import { FramedConnection } from '../rpc/framed.js';
import type { HandlerRegistry } from '../rpc/handlers.js';
import { performHandshake, type WorkerIdentity } from '../rpc/handshake.js';

export interface ConnectOptions {
  host: string;
  port: number;
  secret: Buffer;
  /** The pinned region CA (PEM); null on first contact. */
  ca: string | null;
  hostname: string;
  software: string;
  handlers: HandlerRegistry;
  logger: Logger;
  timeoutMs?: number;
  /** Protocol version to announce (tests pose as other versions). */
  version?: number;
}

export interface RegionConnection {
  channel: RpcChannel;
  worker: WorkerIdentity;
  peerSoftware: string;
  /** The region CA learned from this connection when none was pinned (PEM), to pin now. */
  learnedCa: string | null;
}

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

/** The self-signed root at the top of the chain the region sent. */
function rootOf(socket: TLSSocket): string | null {
  let cert = socket.getPeerCertificate(true);
  for (let i = 0; i < 5 && cert?.raw; i++) {
    const issuer = cert.issuerCertificate;
    if (!issuer?.raw || issuer === cert || issuer.raw.equals(cert.raw)) break;
    cert = issuer;
  }
  if (!cert?.raw) return null;
  const x = new X509Certificate(cert.raw);
  return x.ca && x.checkIssued(x) ? toPem(cert.raw) : null;
}

/**
 * One rack → region worker connection: TLS (trusting only the pinned CA once there is one), the
 * HMAC handshake, then a channel. The worker identity comes from the handshake: all workers share
 * one port, so only the handshake says which one answered.
 */
export async function connectToRegion(opts: ConnectOptions): Promise<RegionConnection> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({
      host: opts.host,
      port: opts.port,
      // The region is reached at whatever address /rpc gave: trust the pinned CA, not names.
      ca: opts.ca ?? undefined,
      rejectUnauthorized: opts.ca !== null,
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new RpcError(RpcCodes.timeout, `TLS connection to ${opts.host}:${opts.port} timed out`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      resolve(s);
    });
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const certProblem =
        typeof err.code === 'string' && (err.code.includes('CERT') || err.code.includes('SIGNATURE'));
      reject(
        certProblem
          ? new KilnError(
              'KILN_ERR_RPC_CA_MISMATCH',
              `region at ${opts.host}:${opts.port} presented a certificate not signed by the pinned region CA (${err.code}); if the region was re-initialised, delete the rack's pinned region-ca.pem`,
            )
          : new RpcError(
              RpcCodes.notConnected,
              `cannot reach region RPC ${opts.host}:${opts.port}: ${err.message}`,
            ),
      );
    };
    s.once('error', onError);
  });
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 15_000);
  socket.on('error', (err) => opts.logger.debug({ err: err.message }, 'region RPC socket error'));
  const conn = new FramedConnection(socket);
  const hs = await performHandshake(conn, {
    role: 'rack',
    secret: opts.secret,
    software: opts.software,
    hostname: opts.hostname,
    timeoutMs,
    ...(opts.version !== undefined ? { version: opts.version } : {}),
  });
  const channel = new RpcChannel({
    conn,
    handlers: opts.handlers,
    logger: opts.logger,
    peerVersion: hs.peerVersion,
    peer: { worker: hs.peerWorker?.id },
  });
  return {
    channel,
    worker: hs.peerWorker!,
    peerSoftware: hs.peerSoftware,
    learnedCa: opts.ca === null ? rootOf(socket) : null,
  };
}
