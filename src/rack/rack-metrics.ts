import type { Server, ServerResponse } from 'node:http';
import type { BootRequest, BootResolver, BootSource } from '../net/boot-source.js';
import type { TftpStats } from '../net/tftp-server.js';
import { emptyHttpStats, type HttpStats, type WorkerStats } from './worker-ipc.js';

/**
 * The rack's `/metrics` (Prometheus text) on its boot HTTP port: TFTP transfers and bytes, boot
 * HTTP requests and bytes, per process (`worker="main"` or the worker number, stable across a
 * worker's restarts) and DHCP leases. The numbers come from the servers' own counters, gathered
 * from every worker by the main process at scrape time, so no metrics library runs in the workers.
 */

export const METRICS_PATH = '/metrics';
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Content-Length from writeHead's arguments: (status, [reason,] headers-object | flat or paired array). */
export function declaredLength(args: readonly unknown[]): number | undefined {
  const headers = args.findLast((a) => typeof a === 'object' && a !== null);
  if (!headers) return undefined;
  const pairs: unknown[][] = Array.isArray(headers)
    ? Array.isArray(headers[0])
      ? (headers as unknown[][])
      : Array.from({ length: headers.length >> 1 }, (_, i) => [headers[2 * i], headers[2 * i + 1]])
    : Object.entries(headers);
  for (const [k, v] of pairs) {
    if (typeof k === 'string' && k.toLowerCase() === 'content-length') {
      const n = Number(v);
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    }
  }
  return undefined;
}

/** Counts a boot HTTP server's requests and response bytes (its own handler stays untouched). */
export function countHttp(server: Server): () => HttpStats {
  const s = emptyHttpStats();
  // Ahead of the server's own handler, which may answer synchronously (405, 400).
  server.prependListener('request', (req, res) => {
    s.requests++;
    // Headers passed to writeHead are not kept where getHeader finds them, so note the length as it goes by.
    let declared: number | undefined;
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      declared = declaredLength(args);
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['writeHead'];
    res.once('close', () => {
      if (!res.writableFinished) {
        s.aborted++;
        return;
      }
      const code = String(res.statusCode);
      s.byStatus[code] = (s.byStatus[code] ?? 0) + 1;
      // sendfile writes past Node's byte counters: the declared length is the figure both paths share.
      const len = declared ?? Number(res.getHeader('content-length'));
      if (req.method !== 'HEAD' && Number.isFinite(len)) s.bytes += len;
    });
  });
  return () => ({ ...s, byStatus: { ...s.byStatus } });
}

export interface RackMetricsSnapshot {
  /** One entry per serving process: `main` in-process, `1`…`N` for workers. */
  processes: Array<{ worker: string; stats: WorkerStats; restarts?: number; up?: boolean }>;
  /** Leases by state (DHCP runs in the main process only), or null without DHCP. */
  dhcpLeases: Record<string, number> | null;
}

type Sample = [labels: Record<string, string>, value: number];

function family(out: string[], name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]) {
  if (samples.length === 0) return;
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, value] of samples) {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      .join(',');
    out.push(`${name}${l ? `{${l}}` : ''} ${value}`);
  }
}

/** Prometheus text exposition (format 0.0.4) of a snapshot. Pure. */
export function renderRackMetrics(snap: RackMetricsSnapshot): string {
  const out: string[] = [];
  const procs = snap.processes;
  const tftp = procs.filter((p) => p.stats.tftp).map((p) => [p.worker, p.stats.tftp!] as const);
  const http = procs.filter((p) => p.stats.http).map((p) => [p.worker, p.stats.http!] as const);
  const workers = procs.filter((p) => p.worker !== 'main');
  family(
    out,
    'kiln_rack_worker_up',
    'gauge',
    'Whether a rack TFTP/HTTP worker process is running and answered this scrape.',
    workers.map((p) => [{ worker: p.worker }, p.up === false ? 0 : 1]),
  );
  family(
    out,
    'kiln_rack_worker_restarts_total',
    'counter',
    'Times a rack worker process died and was started again.',
    workers.map((p) => [{ worker: p.worker }, p.restarts ?? 0]),
  );
  const results: Array<[string, keyof TftpStats]> = [
    ['completed', 'completed'],
    ['client_ended', 'clientEnded'],
    ['timed_out', 'timedOut'],
    ['failed', 'failed'],
  ];
  family(
    out,
    'kiln_rack_tftp_transfers_total',
    'counter',
    'TFTP read transfers by how they ended (client_ended includes OVMF tsize probes).',
    tftp.flatMap(([w, t]) => results.map(([r, k]): Sample => [{ worker: w, result: r }, t[k]])),
  );
  family(
    out,
    'kiln_rack_tftp_transfers_active',
    'gauge',
    'TFTP transfers running now.',
    tftp.map(([w, t]) => [{ worker: w }, t.active]),
  );
  family(
    out,
    'kiln_rack_tftp_sent_bytes_total',
    'counter',
    'Bytes of completed TFTP transfers.',
    tftp.map(([w, t]) => [{ worker: w }, t.bytesSent]),
  );
  family(
    out,
    'kiln_rack_tftp_retransmits_total',
    'counter',
    'TFTP DATA packets sent again after a timeout.',
    tftp.map(([w, t]) => [{ worker: w }, t.retransmits]),
  );
  family(
    out,
    'kiln_rack_http_requests_total',
    'counter',
    'Boot HTTP responses completed, by status code.',
    http.flatMap(([w, h]) =>
      Object.entries(h.byStatus)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([code, n]): Sample => [{ worker: w, code }, n]),
    ),
  );
  family(
    out,
    'kiln_rack_http_aborted_total',
    'counter',
    'Boot HTTP responses cut off before their end (client gone or stalled).',
    http.map(([w, h]) => [{ worker: w }, h.aborted]),
  );
  family(
    out,
    'kiln_rack_http_sent_bytes_total',
    'counter',
    'Body bytes of completed boot HTTP responses.',
    http.map(([w, h]) => [{ worker: w }, h.bytes]),
  );
  if (snap.dhcpLeases) {
    family(
      out,
      'kiln_rack_dhcp_leases',
      'gauge',
      'DHCP leases held by this rack, by state.',
      Object.entries(snap.dhcpLeases).map(([state, n]): Sample => [{ state }, n]),
    );
  }
  return `${out.join('\n')}\n`;
}

/**
 * The boot resolver with `/metrics` answered first (HTTP only: TFTP has no such name). Everything
 * else goes to `inner` unchanged.
 */
export function withMetrics(inner: BootResolver, snapshot: () => Promise<RackMetricsSnapshot>): BootResolver {
  return {
    async resolve(req: BootRequest): Promise<BootSource | null> {
      if (req.protocol === 'http' && req.path === METRICS_PATH) {
        const text = renderRackMetrics(await snapshot());
        return { kind: 'content', body: Buffer.from(text, 'utf8'), contentType: CONTENT_TYPE };
      }
      return inner.resolve(req);
    },
  };
}

/** Adds b's counters to a's (a worker's earlier lives plus its current one). Gauges take b's. */
export function addStats(a: WorkerStats, b: WorkerStats): WorkerStats {
  const tftp =
    a.tftp && b.tftp
      ? {
          active: b.tftp.active,
          started: a.tftp.started + b.tftp.started,
          completed: a.tftp.completed + b.tftp.completed,
          clientEnded: a.tftp.clientEnded + b.tftp.clientEnded,
          timedOut: a.tftp.timedOut + b.tftp.timedOut,
          failed: a.tftp.failed + b.tftp.failed,
          bytesSent: a.tftp.bytesSent + b.tftp.bytesSent,
          retransmits: a.tftp.retransmits + b.tftp.retransmits,
          duplicateAcks: a.tftp.duplicateAcks + b.tftp.duplicateAcks,
        }
      : (b.tftp ?? (a.tftp ? { ...a.tftp, active: 0 } : null));
  let http: HttpStats | null = b.http ?? a.http;
  if (a.http && b.http) {
    const byStatus = { ...a.http.byStatus };
    for (const [k, v] of Object.entries(b.http.byStatus)) byStatus[k] = (byStatus[k] ?? 0) + v;
    http = {
      requests: a.http.requests + b.http.requests,
      bytes: a.http.bytes + b.http.bytes,
      aborted: a.http.aborted + b.http.aborted,
      byStatus,
    };
  }
  return { tftp, http };
}
