import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { DecodeError, KilnError } from '../lib/errors.js';
import type { BootRequest, BootSource } from '../net/boot-source.js';
import type { TftpStats } from '../net/tftp-server.js';

/**
 * The messages between the rack's main process and its TFTP/HTTP workers, over the fork IPC
 * channel (advanced serialization, so Buffers cross as bytes). Every message carries `kiln:
 * 'rack-…'`; each side validates what it receives and ignores anything else, so a confused or
 * compromised peer can make a request fail but never crash the other process.
 *
 * A worker resolves every boot path through the main process (`resolve` → `resolved`): the one
 * Booter there keeps the only GetBootConfig cache, the boot timeline (hops held until the region
 * knows a MAC), the DHCP leases that attribute TFTP hops, and the image cache's LRU recency, so
 * none of that has to be copied between processes. Workers only move bytes.
 */

/** Longest path a worker forwards; longer ones are answered "not found" without asking. */
export const MAX_PATH = 16 * 1024;
/** Rendered content (scripts, configs, /metrics) larger than this is refused as our fault. */
export const MAX_CONTENT = 16 * 1024 * 1024;

export interface ListenResult {
  port?: number;
  /** The bind error, for explainListenError in the main process. */
  error?: { code?: string; message: string };
}

export interface HttpStats {
  requests: number;
  /** Body bytes of completed responses (Content-Length; HEAD counts 0). */
  bytes: number;
  /** Responses cut off before their end (client gone, stall). */
  aborted: number;
  /** Completed responses by status code. */
  byStatus: Record<string, number>;
}

export interface WorkerStats {
  tftp: TftpStats | null;
  http: HttpStats | null;
}

export type MainToWorker =
  | { kiln: 'rack-start'; index: number; config: Config; tftpPort: number; httpPort: number }
  | { kiln: 'rack-resolved'; id: number; source: BootSource | null }
  | { kiln: 'rack-resolved'; id: number; error: { code: string; message: string } }
  | { kiln: 'rack-stats-request'; id: number }
  | { kiln: 'rack-stop' };

export type WorkerToMain =
  | { kiln: 'rack-ready'; index: number; tftp: ListenResult | null; http: ListenResult | null }
  | { kiln: 'rack-resolve'; id: number; req: BootRequest }
  | { kiln: 'rack-stats'; id: number; stats: WorkerStats };

const id = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const port = z.number().int().min(0).max(65535);
const shortText = z.string().max(4096);
const bytes = z.instanceof(Uint8Array).refine((b) => b.byteLength <= MAX_CONTENT, 'content too large');

const listenResult = z
  .object({
    port: port.optional(),
    error: z.object({ code: z.string().max(64).optional(), message: shortText }).optional(),
  })
  .nullable();

const tftpStats = z.object({
  active: count,
  started: count,
  completed: count,
  clientEnded: count,
  timedOut: count,
  failed: count,
  bytesSent: count,
  retransmits: count,
  duplicateAcks: count,
});

const httpStats = z.object({
  requests: count,
  bytes: count,
  aborted: count,
  byStatus: z
    .record(z.string().regex(/^[1-5][0-9][0-9]$/), count)
    .refine((r) => Object.keys(r).length <= 100, 'too many status codes'),
});

const bootRequest = z.object({
  path: z.string().max(MAX_PATH),
  protocol: z.enum(['tftp', 'http']),
  remoteAddress: z.string().max(64),
  remotePort: port,
  localAddress: z.string().max(64),
  userAgent: z.string().max(1024).optional(),
});

const bootSource = z.union([
  z.object({ kind: z.literal('file'), path: z.string().min(1).max(4096), contentType: shortText.optional() }),
  z.object({ kind: z.literal('content'), body: bytes, contentType: shortText.optional() }),
]);

/** The parts of the config a worker uses; the rest travels along unchecked (the main process validated it at load). */
const workerConfig = z.looseObject({
  data_dir: z.string(),
  log: z.looseObject({ level: z.string() }),
  native: z.looseObject({ enabled: z.boolean() }),
  rack: z.looseObject({
    tftp: z.looseObject({
      enabled: z.boolean(),
      host: z.string(),
      timeout_ms: z.number().int().positive(),
      retries: z.number().int().positive(),
    }),
    http: z.looseObject({ host: z.string() }),
  }),
});

const toWorker = z.discriminatedUnion('kiln', [
  z.object({
    kiln: z.literal('rack-start'),
    index: z.number().int().min(1).max(1024),
    config: workerConfig,
    tftpPort: port,
    httpPort: port,
  }),
  z.object({
    kiln: z.literal('rack-resolved'),
    id,
    source: bootSource.nullable().optional(),
    error: z.object({ code: z.string().max(64), message: shortText }).optional(),
  }),
  z.object({ kiln: z.literal('rack-stats-request'), id }),
  z.object({ kiln: z.literal('rack-stop') }),
]);

const toMain = z.discriminatedUnion('kiln', [
  z.object({
    kiln: z.literal('rack-ready'),
    index: z.number().int().min(1).max(1024),
    tftp: listenResult,
    http: listenResult,
  }),
  z.object({ kiln: z.literal('rack-resolve'), id, req: bootRequest }),
  z.object({
    kiln: z.literal('rack-stats'),
    id,
    stats: z.object({ tftp: tftpStats.nullable(), http: httpStats.nullable() }),
  }),
]);

function isRackMessage(m: unknown): boolean {
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof (m as { kiln?: unknown }).kiln === 'string' &&
    (m as { kiln: string }).kiln.startsWith('rack-')
  );
}

function fail(what: string, error: z.ZodError): never {
  const i = error.issues[0];
  throw new DecodeError(`bad ${what} message: ${i?.path.join('.')}: ${i?.message}`);
}

/**
 * A message from the main process, validated; null for messages that are not ours (other IPC
 * users). Throws DecodeError for a `rack-…` message of the wrong shape.
 */
export function parseMainMessage(m: unknown): MainToWorker | null {
  if (!isRackMessage(m)) return null;
  const r = toWorker.safeParse(m);
  if (!r.success) fail('main-to-worker', r.error);
  const msg = r.data;
  if (msg.kiln === 'rack-resolved') {
    if (msg.error) return { kiln: 'rack-resolved', id: msg.id, error: msg.error };
    if (msg.source === undefined)
      throw new DecodeError('bad main-to-worker message: resolved without source');
    return { kiln: 'rack-resolved', id: msg.id, source: msg.source ? asSource(msg.source) : null };
  }
  if (msg.kiln === 'rack-start') return { ...msg, config: msg.config as unknown as Config };
  return msg;
}

/** A message from a worker, validated; null when not ours; DecodeError when malformed. */
export function parseWorkerMessage(m: unknown): WorkerToMain | null {
  if (!isRackMessage(m)) return null;
  const r = toMain.safeParse(m);
  if (!r.success) fail('worker-to-main', r.error);
  const msg = r.data;
  if (msg.kiln === 'rack-resolve') {
    const req: BootRequest = { ...msg.req };
    if (req.userAgent === undefined) delete req.userAgent;
    return { kiln: 'rack-resolve', id: msg.id, req };
  }
  return msg as WorkerToMain;
}

/** Structured clone hands a Buffer over as a plain Uint8Array; the servers want a Buffer. */
function asSource(s: z.infer<typeof bootSource>): BootSource {
  if (s.kind === 'file') {
    return {
      kind: 'file',
      path: s.path,
      ...(s.contentType !== undefined ? { contentType: s.contentType } : {}),
    };
  }
  const body = Buffer.isBuffer(s.body)
    ? s.body
    : Buffer.from(s.body.buffer, s.body.byteOffset, s.body.byteLength);
  return { kind: 'content', body, ...(s.contentType !== undefined ? { contentType: s.contentType } : {}) };
}

/** An error thrown by the main process's resolver, as the worker's servers see it (same code). */
export function remoteError(e: { code: string; message: string }): KilnError {
  return new KilnError(e.code, e.message, { from: 'rack main process' });
}

/** How a resolver's failure crosses to the worker: a KilnError keeps its code (PATH_REFUSED matters to TFTP). */
export function errorForWire(err: unknown): { code: string; message: string } {
  if (err instanceof KilnError) return { code: err.code.slice(0, 64), message: err.message.slice(0, 4096) };
  return {
    code: 'KILN_ERR_INTERNAL',
    message: (err instanceof Error ? err.message : String(err)).slice(0, 4096),
  };
}

export function emptyHttpStats(): HttpStats {
  return { requests: 0, bytes: 0, aborted: 0, byStatus: {} };
}
