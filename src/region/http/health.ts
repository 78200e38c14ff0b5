import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { RegionMetrics } from './metrics.js';
import type { RoutePlugin } from './plugin.js';

/**
 * /healthz and /metrics: public, outside /api/v1, for load balancers, systemd watchdogs and
 * Prometheus. /healthz says 503 when the database does not answer, so a worker with a broken
 * database is taken out of rotation rather than answering API calls with 500s.
 */
export function healthRoutes(db: Database.Database, metrics: RegionMetrics): RoutePlugin {
  const router = new Router();
  const ping = db.prepare('SELECT 1 AS ok');
  router.get('/healthz', (ctx) => {
    try {
      ping.get();
      ctx.body = { status: 'ok', database: 'ok' };
    } catch (err) {
      ctx.status = 503;
      ctx.body = { status: 'error', database: (err as Error).message };
    }
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return { router };
}
