import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { RoutePlugin } from './http/plugin.js';

/**
 * `/metrics` answers for every region worker: the worker that gets the scrape asks the supervisor,
 * which collects each worker's registry as JSON over the fork IPC channel and merges them with
 * prom-client's AggregatorRegistry. Messages carry `kiln` so other IPC users are not confused.
 */

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number] & { aggregator?: string };

interface CollectRequest {
  kiln: 'metrics-collect';
  id: string;
}
interface CollectAnswer {
  kiln: 'metrics-data';
  id: string;
  data: MetricJson[];
}
interface ScrapeRequest {
  kiln: 'metrics-request';
  id: string;
}
interface ScrapeAnswer {
  kiln: 'metrics-response';
  id: string;
  text?: string;
  error?: string;
}

export type MetricsIpcMessage = CollectRequest | CollectAnswer | ScrapeRequest | ScrapeAnswer;

export function isMetricsMessage(m: unknown): m is MetricsIpcMessage {
  return typeof m === 'object' && m !== null && typeof (m as { kiln?: unknown }).kiln === 'string';
}

/**
 * Gauges every worker reads from the same database (machines by status): summing them would count
 * each machine once per worker, so the merge keeps one copy.
 */
const SHARED_GAUGES = new Set(['kiln_machines']);

export async function aggregateMetrics(perWorker: MetricJson[][]): Promise<string> {
  const fixed = perWorker.map((list) =>
    list.map((m) => (SHARED_GAUGES.has(m.name) ? { ...m, aggregator: 'first' } : m)),
  );
  const agg = AggregatorRegistry.aggregate(fixed as Parameters<typeof AggregatorRegistry.aggregate>[0]);
  return agg.metrics();
}

/** Worker side: answer the supervisor's collect requests from `registry`. */
export function serveMetricsCollection(registry: Registry): () => void {
  const onMessage = (m: unknown) => {
    if (!isMetricsMessage(m) || m.kiln !== 'metrics-collect') return;
    void registry.getMetricsAsJSON().then(
      (data) => process.send?.({ kiln: 'metrics-data', id: m.id, data } satisfies CollectAnswer),
      () => process.send?.({ kiln: 'metrics-data', id: m.id, data: [] } satisfies CollectAnswer),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

/** Worker side: ask the supervisor for every worker's metrics, merged. */
function scrapeAll(timeoutMs: number): Promise<string> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the region supervisor did not answer the metrics request'));
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      if (!isMetricsMessage(m) || m.kiln !== 'metrics-response' || m.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (m.text !== undefined) resolve(m.text);
      else reject(new Error(m.error ?? 'metrics aggregation failed'));
    };
    process.on('message', onMessage);
    process.send?.({ kiln: 'metrics-request', id } satisfies ScrapeRequest);
  });
}

/** A /metrics route answering for all workers; mounted before the region's own (plugins go first). */
export function aggregatedMetricsRoutes(registry: Registry, timeoutMs = 5000): RoutePlugin {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    try {
      ctx.body = await scrapeAll(timeoutMs);
    } catch {
      // Better this worker's own figures than nothing.
      ctx.set('X-Kiln-Metrics', 'this-worker-only');
      ctx.body = await registry.metrics();
    }
  });
  return { router };
}

/** Supervisor side: gather from every worker with a deadline; missing answers are skipped. */
export interface MetricsWorkerPort {
  send(message: unknown, cb?: (err: Error | null) => void): boolean;
  on(event: 'message', fn: (m: unknown) => void): unknown;
  off(event: 'message', fn: (m: unknown) => void): unknown;
}

export async function collectFromWorkers(workers: MetricsWorkerPort[], timeoutMs: number): Promise<string> {
  const id = randomUUID();
  const answers = await Promise.all(
    workers.map(
      (w) =>
        new Promise<MetricJson[] | null>((resolve) => {
          const timer = setTimeout(() => {
            w.off('message', onMessage);
            resolve(null);
          }, timeoutMs);
          const onMessage = (m: unknown) => {
            if (!isMetricsMessage(m) || m.kiln !== 'metrics-data' || m.id !== id) return;
            clearTimeout(timer);
            w.off('message', onMessage);
            resolve(m.data);
          };
          w.on('message', onMessage);
          try {
            w.send({ kiln: 'metrics-collect', id } satisfies CollectRequest, () => {});
          } catch {
            clearTimeout(timer);
            w.off('message', onMessage);
            resolve(null);
          }
        }),
    ),
  );
  return aggregateMetrics(answers.filter((a): a is MetricJson[] => a !== null));
}
