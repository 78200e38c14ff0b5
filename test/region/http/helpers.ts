import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { loadConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/lib/logger.js';
import { createRegionApp, type RoutePlugin } from '../../../src/region/http/app.js';
import { createApiKey } from '../../../src/storage/api-keys.js';
import { openRegionDatabase } from '../../../src/storage/region-db.js';

export interface TestRegion {
  base: string;
  key: string;
  db: Database.Database;
  dataDir: string;
  /** fetch against the region with the API key and JSON content type unless overridden. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** The region app on 127.0.0.1 port 0 over a real SQLite file in a temp dir. */
export async function startRegion(
  opts: { bodyLimit?: number; plugins?: RoutePlugin[] } = {},
): Promise<TestRegion> {
  const root = mkdtempSync(join(tmpdir(), 'kiln-http-'));
  const dataDir = join(root, 'data');
  const db = openRegionDatabase(dataDir, silentLogger);
  const { config } = loadConfig({
    env: {},
    overrides: {
      data_dir: dataDir,
      ...(opts.bodyLimit ? { 'region.http.body_limit_bytes': opts.bodyLimit } : {}),
    },
  });
  const app = createRegionApp({ config, logger: silentLogger, db, plugins: opts.plugins ?? [] });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { key } = createApiKey(db, 'test');
  return {
    base,
    key,
    db,
    dataDir,
    api(path, init = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${key}`);
      if (json !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(base + path, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function jsonOf(res: Response): Promise<Record<string, any>> {
  const text = await res.text();
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    throw new Error(`not JSON (status ${res.status}): ${text.slice(0, 200)}`);
  }
}

/** Asserts the one error shape and returns the error object. */
export async function errorOf(
  res: Response,
  status: number,
  code: string,
): Promise<{ code: string; message: string; details: any }> {
  const body = await jsonOf(res);
  if (
    res.status !== status ||
    body.error?.code !== code ||
    typeof body.error?.message !== 'string' ||
    typeof body.error?.details !== 'object'
  ) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(body)}`);
  }
  return body.error;
}
