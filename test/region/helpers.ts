import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

/** A config for tests: temp data_dir, loopback, quiet; ports as given (0 = any, in-process only). */
export function testConfig(
  ports: { http: number; rpc: number },
  extra: Record<string, string> = {},
): {
  config: Config;
  dataDir: string;
  cleanup(): void;
} {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-rpc-test-'));
  const { config } = loadConfig({
    env: {
      KILN_DATA_DIR: dataDir,
      KILN_LOG_LEVEL: 'silent',
      KILN_REGION_HTTP_HOST: '127.0.0.1',
      KILN_REGION_RPC_HOST: '127.0.0.1',
      KILN_REGION_HTTP_PORT: '5240',
      KILN_REGION_RPC_PORT: '5250',
      ...extra,
    },
  });
  const c = structuredClone(config) as { region: { http: { port: number }; rpc: { port: number } } };
  c.region.http.port = ports.http;
  c.region.rpc.port = ports.rpc;
  return {
    config: c as unknown as Config,
    dataDir,
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** A random high port for tests that spawn processes (port 0 cannot be shared between them). */
export function highPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
