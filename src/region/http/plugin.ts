import type Router from '@koa/router';

/**
 * A set of routes mounted into the region app. Routes under /api/v1 get the app's API key check,
 * error shape and body limit; routes elsewhere (e.g. /rpc) are public. `openapi` is an OpenAPI
 * `paths` object describing the plugin's /api/v1 routes (build operations with `operation()` from
 * openapi.ts); a test checks every route is described.
 */
export interface RoutePlugin {
  router: Router;
  openapi?: Record<string, unknown>;
}
