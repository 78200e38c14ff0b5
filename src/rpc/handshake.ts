import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { KilnError } from '../lib/errors.js';
import { RpcCodes, RpcError } from './errors.js';
import type { FramedConnection } from './framed.js';
import { PROTOCOL_VERSION, versionCompatible } from './version.js';

/**
 * The mutual challenge both ends run before anything else is served, after MAAS's: each side sends
 * 16 random bytes, the other proves it holds the shared secret with HMAC-SHA256 over them. We also
 * mix in both challenges, the prover's role and the TLS session's exported keying material
 * (RFC 5705), so a proof cannot be reflected back, replayed, or relayed into another TLS session.
 *
 *   rack                                   region worker
 *    | hello {role, v, sv, ch, rack}   -->  |
 *    | <--  hello {role, v, sv, ch, worker} |
 *    | auth {h}                        -->  |   h = HMAC(secret, label|role|peer ch|own ch|ekm)
 *    | <--                       auth {h}   |
 *    | ok  -->                 <--     ok   |   each after checking the other's proof
 *
 * A failure sends `fail {code, message}` and closes: nothing else is ever answered.
 */

export type Role = 'region' | 'rack';

export interface WorkerIdentity {
  /** Stable for the worker's life: "<host>:pid=<pid>", the key /rpc lists it under. */
  id: string;
  host: string;
  pid: number;
}

export interface HandshakeOptions {
  role: Role;
  secret: Buffer;
  /** kiln's software version, for logs and the racks API. */
  software: string;
  /** Region workers say who they are so the rack knows which worker it reached. */
  worker?: WorkerIdentity;
  /** Racks say their host name (for logs on the region before registration). */
  hostname?: string;
  timeoutMs?: number;
  /** Protocol version to announce; tests use it to pose as an incompatible peer. */
  version?: number;
}

export interface HandshakeResult {
  peerVersion: number;
  peerSoftware: string;
  peerWorker?: WorkerIdentity;
  peerHostname?: string;
}

const CHALLENGE_BYTES = 16;
const LABEL = 'kiln-rpc-v1';
const EXPORTER_LABEL = 'EXPORTER-kiln-rpc-handshake';

export class HandshakeError extends RpcError {}

/** Keying material unique to this TLS session; empty for plain sockets (benchmarks only). */
function sessionBinding(conn: FramedConnection): Buffer {
  const s = conn.socket;
  if (s instanceof TLSSocket) return s.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0));
  return Buffer.alloc(0);
}

function proof(
  secret: Buffer,
  prover: Role,
  peerChallenge: Buffer,
  ownChallenge: Buffer,
  binding: Buffer,
): Buffer {
  return createHmac('sha256', secret)
    .update(LABEL)
    .update('\0')
    .update(prover)
    .update('\0')
    .update(peerChallenge)
    .update(ownChallenge)
    .update(binding)
    .digest();
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asBytes(v: unknown): Buffer | undefined {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.length) : undefined;
}

function parseWorker(v: unknown): WorkerIdentity | undefined {
  if (!isRecord(v)) return undefined;
  const { id, host, pid } = v;
  if (typeof id !== 'string' || typeof host !== 'string' || typeof pid !== 'number') return undefined;
  if (id.length > 300 || host.length > 255) return undefined;
  return { id, host, pid };
}

export function performHandshake(conn: FramedConnection, opts: HandshakeOptions): Promise<HandshakeResult> {
  const peerRole: Role = opts.role === 'region' ? 'rack' : 'region';
  const ownChallenge = randomBytes(CHALLENGE_BYTES);
  const binding = sessionBinding(conn);
  const version = opts.version ?? PROTOCOL_VERSION;

  return new Promise<HandshakeResult>((resolve, reject) => {
    let result: HandshakeResult | undefined;
    let verified = false;
    let peerOk = false;
    let done = false;

    const finish = (err?: KilnError) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.off('close', onClose);
      if (err) {
        conn.fail(err);
        reject(err);
      } else {
        conn.pause();
        resolve(result!);
      }
    };
    const onClose = (info: { error?: KilnError | undefined }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(info.error ?? new HandshakeError(RpcCodes.closed, 'connection closed during the RPC handshake'));
    };
    const timer = setTimeout(
      () => finish(new HandshakeError(RpcCodes.auth, 'RPC handshake timed out')),
      opts.timeoutMs ?? 10_000,
    );
    timer.unref();
    conn.on('close', onClose);

    conn.setHandler((msg) => {
      if (done) return;
      if (!isRecord(msg)) {
        finish(new HandshakeError(RpcCodes.protocol, 'expected an RPC handshake message'));
        return;
      }
      if (msg.t === 'fail') {
        const code = typeof msg.code === 'string' ? msg.code.slice(0, 100) : RpcCodes.auth;
        const text = typeof msg.message === 'string' ? msg.message.slice(0, 500) : 'handshake refused';
        done = true;
        clearTimeout(timer);
        conn.off('close', onClose);
        conn.close();
        reject(new HandshakeError(code, `${peerRole} refused the handshake: ${text}`));
        return;
      }
      if (msg.t === 'hello' && result === undefined) {
        const challenge = asBytes(msg.ch);
        if (msg.role !== peerRole || challenge?.length !== CHALLENGE_BYTES || typeof msg.v !== 'number') {
          finish(
            new HandshakeError(
              RpcCodes.protocol,
              `expected a kiln ${peerRole} hello (is the peer kiln, and the other role?)`,
            ),
          );
          return;
        }
        if (!versionCompatible(msg.v)) {
          finish(
            new HandshakeError(
              RpcCodes.version,
              `incompatible RPC protocol version ${msg.v} (this ${opts.role} speaks ${version}); upgrade the older side`,
            ),
          );
          return;
        }
        result = {
          peerVersion: msg.v,
          peerSoftware: typeof msg.sv === 'string' ? msg.sv.slice(0, 100) : 'unknown',
        };
        const worker = parseWorker(msg.worker);
        if (worker) result.peerWorker = worker;
        if (typeof msg.hostname === 'string') result.peerHostname = msg.hostname.slice(0, 255);
        if (peerRole === 'region' && !worker) {
          finish(new HandshakeError(RpcCodes.protocol, 'region hello lacks its worker identity'));
          return;
        }
        (result as HandshakeResult & { challenge?: Buffer }).challenge = challenge;
        conn.send({ t: 'auth', h: proof(opts.secret, opts.role, challenge, ownChallenge, binding) });
        return;
      }
      if (msg.t === 'auth' && result !== undefined && !verified) {
        const got = asBytes(msg.h);
        const peerChallenge = (result as HandshakeResult & { challenge?: Buffer }).challenge!;
        const want = proof(opts.secret, peerRole, ownChallenge, peerChallenge, binding);
        if (!got || got.length !== want.length || !timingSafeEqual(got, want)) {
          finish(
            new HandshakeError(
              RpcCodes.auth,
              'RPC authentication failed: the shared secrets differ (check rack.secret_file)',
            ),
          );
          return;
        }
        verified = true;
        delete (result as HandshakeResult & { challenge?: Buffer }).challenge;
        conn.send({ t: 'ok' });
        if (peerOk) finish();
        return;
      }
      if (msg.t === 'ok' && verified && !peerOk) {
        peerOk = true;
        finish();
        return;
      }
      if (msg.t === 'ok' && !verified) {
        // The peer accepted us before we checked it; wait for its proof.
        peerOk = true;
        return;
      }
      finish(new HandshakeError(RpcCodes.protocol, 'unexpected message during the RPC handshake'));
    });

    const hello: Record<string, unknown> = {
      t: 'hello',
      role: opts.role,
      v: version,
      sv: opts.software,
      ch: ownChallenge,
    };
    if (opts.worker) hello.worker = opts.worker;
    if (opts.hostname) hello.hostname = opts.hostname;
    conn.send(hello);
  });
}
