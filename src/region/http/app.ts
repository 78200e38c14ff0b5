import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import type Database from 'better-sqlite3';
import Koa from 'koa';
import serve from 'koa-static';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../lib/logger.js';
import { apiKeyAuth, isApiPath } from './auth.js';
import { bootResourceRoutes } from './boot-resources.js';
import { errorBody, errorMiddleware, HttpError } from './errors.js';
import { healthRoutes } from './health.js';
import { machineRoutes } from './machines.js';
import { createRegionMetrics, metricsMiddleware, type RegionMetrics } from './metrics.js';
import { buildOpenApiDocument, operation } from './openapi.js';
import type { RoutePlugin } from './plugin.js';
import { subnetRoutes } from './subnets.js';

export type { RegionMetrics } from './metrics.js';
export type { RoutePlugin } from './plugin.js';

export interface RegionAppOptions {
  config: Config;
  logger: Logger;
  db: Database.Database;
  metrics?: RegionMetrics;
  plugins?: RoutePlugin[];
}

/** The UI's files: `static/` at the repository (or package) root, beside src/ and dist/. */
export const STATIC_DIR = fileURLToPath(new URL('../../../static/', import.meta.url));

/** The region's own route sets, in the order they are tried. */
export function regionRoutes(db: Database.Database, metrics: RegionMetrics): RoutePlugin[] {
  return [healthRoutes(db, metrics), machineRoutes(db), subnetRoutes(db), bootResourceRoutes(db)];
}

function allowedMethods(routers: Router[], path: string): string[] {
  const allowed = new Set<string>();
  for (const r of routers) {
    for (const layer of r.match(path, 'GET').path) for (const m of layer.methods) allowed.add(m);
  }
  return [...allowed];
}

/**
 * The region HTTP app: API (/api/v1), /healthz, /metrics and the UI's static files, plus whatever
 * plugins other parts add (/rpc discovery, racks, images, metadata...). It does not listen: the
 * caller (the region worker, or a test) does `app.listen(...)` or `http.createServer(app.callback())`.
 *
 * Order: metrics (sees the final status) → error shape → API key check for /api/v1 → plugin routes
 * → the region's routes → the OpenAPI document → 404/405 for unknown API paths → static files.
 * Plugins come before the region's routes, so a plugin may answer a path first (e.g. a
 * supervisor-aggregated /metrics).
 */
export function createRegionApp(opts: RegionAppOptions): Koa {
  const { config, logger, db } = opts;
  const app = new Koa();
  const metrics = opts.metrics ?? createRegionMetrics(db);
  const plugins = [...(opts.plugins ?? []), ...regionRoutes(db, metrics)];
  const openapiPlugin: RoutePlugin = {
    router: undefined as unknown as Router,
    openapi: {
      '/api/v1/openapi.json': {
        get: operation({
          summary: 'This document',
          tag: 'meta',
          public: true,
          response: { type: 'object' },
        }),
      },
    },
  };
  const document = buildOpenApiDocument([...plugins, openapiPlugin]);
  const routers = plugins.map((p) => p.router);
  const bodyLimit = config.region.http.body_limit_bytes;

  // Errors are answered by errorMiddleware; anything reaching Koa's handler is a socket-level issue.
  app.on('error', (err: unknown) => logger.debug({ err }, 'http connection error'));

  app.use(metricsMiddleware(metrics));
  app.use(errorMiddleware(logger));
  app.use(async (ctx, next) => {
    ctx.state.bodyLimit = bodyLimit;
    await next();
  });
  app.use(apiKeyAuth(db));
  for (const r of routers) app.use(r.routes());
  app.use(async (ctx, next) => {
    if (ctx.path === '/api/v1/openapi.json' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.body = document;
      return;
    }
    if (!isApiPath(ctx.path)) return next();
    const allowed = allowedMethods(routers, ctx.path);
    if (allowed.length > 0) {
      ctx.set('Allow', allowed.join(', '));
      throw new HttpError(405, 'KILN_ERR_METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}`, {
        allowed,
      });
    }
    throw new HttpError(404, 'KILN_ERR_NOT_FOUND', `no API route ${ctx.method} ${ctx.path}`);
  });
  app.use(serve(STATIC_DIR, { index: 'index.html', hidden: false, maxAge: 0 }));
  app.use(async (ctx) => {
    if (ctx.body === undefined && ctx.status === 404 && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.status = 404;
      ctx.body = errorBody('KILN_ERR_NOT_FOUND', `no such file ${ctx.path}`);
    }
  });
  return app;
}
