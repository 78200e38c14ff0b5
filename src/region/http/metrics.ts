import type Database from 'better-sqlite3';
import type { Context, Next } from 'koa';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { countMachinesByStatus, MACHINE_STATUSES } from '../../storage/machines.js';

/**
 * The region's Prometheus metrics. Each app gets its own Registry (not prom-client's global one) so
 * several apps in one process — tests, or a future in-process setup — do not collide; the region
 * supervisor can merge worker registries with AggregatorRegistry.
 */
export interface RegionMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
}

export function createRegionMetrics(
  db: Database.Database,
  opts: { defaultMetrics?: boolean } = {},
): RegionMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'kiln_' });
  const httpRequests = new Counter({
    name: 'kiln_http_requests_total',
    help: 'Region HTTP requests, by route pattern, method and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'kiln_http_request_duration_seconds',
    help: 'Region HTTP request latency, by route pattern, method and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'kiln_machines',
    help: 'Machines in the inventory, by status (read from the database at scrape time).',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      // Reset first so a status whose last machine left goes to 0 instead of keeping its old value.
      this.reset();
      const counts = countMachinesByStatus(db);
      for (const status of MACHINE_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
  return { registry, httpRequests, httpDuration };
}

/**
 * Records every request. The route label is the matched pattern (`/api/v1/machines/:system_id`),
 * never the raw path, so label cardinality stays bounded whatever clients send.
 */
export function metricsMiddleware(metrics: RegionMetrics) {
  return async function measure(ctx: Context, next: Next): Promise<void> {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
      // Requests refused before routing (401/403) or matching no route share one label per area.
      const route = matched
        ? String(matched)
        : ctx.path.startsWith('/api/')
          ? 'api_unmatched'
          : ctx.status === 404
            ? 'unmatched'
            : 'static';
      const labels = { method: ctx.method, route, status: String(ctx.status) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
    }
  };
}
