// Region API benchmark: seeds 10k machines in a temp SQLite database, serves the real region app
// on 127.0.0.1, and measures with autocannon
//   1. GET one page of 100 machines (requests/s, p99)
//   2. a full cursor walk over all 10k (wall time; pages of 100 and of 1000)
//   3. creating 1k machines by POST (requests/s, p99)
// Absolute figures: there is no reference server to compare with. The machine and its load vary
// (2 cores shared with other work here), so compare runs on the same machine only.
//   npm run bench:api            (BENCH_SECONDS=10 by default, BENCH_CONNECTIONS=10)
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/lib/logger.js';
import { createRegionApp } from '../../src/region/http/app.js';
import { createApiKey } from '../../src/storage/api-keys.js';
import { createMachine } from '../../src/storage/machines.js';
import { openRegionDatabase } from '../../src/storage/region-db.js';

// autocannon ships no type declarations: describe the part used here.
interface CannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  opts: Record<string, unknown>,
) => Promise<CannonResult>;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const N = 10_000;

const mac = (i: number, prefix = '0a') =>
  `${prefix}:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

const root = mkdtempSync(join(tmpdir(), 'kiln-bench-api-'));
const db = openRegionDatabase(join(root, 'data'), silentLogger);
const { config } = loadConfig({
  env: {},
  overrides: { data_dir: join(root, 'data'), 'log.level': 'silent' },
});
const server = createRegionApp({ config, logger: silentLogger, db }).listen(0, '127.0.0.1');

try {
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { key } = createApiKey(db, 'bench');
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

  const t0 = performance.now();
  db.transaction(() => {
    const statuses = ['NEW', 'READY', 'DEPLOYED', 'ALLOCATED'] as const;
    for (let i = 0; i < N; i++) {
      createMachine(db, {
        hostname: `node-${String(i).padStart(5, '0')}`,
        status: statuses[i % 4],
        boot_mac: mac(i),
        power_type: 'ipmi',
        power_parameters: {
          power_address: `10.1.${i >> 8}.${i & 255}`,
          power_user: 'admin',
          power_pass: 'secret',
        },
        tags: i % 10 === 0 ? ['gpu'] : [],
      });
    }
  })();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`kiln API benchmark — Node ${process.version}, ${cpus().length} × ${cpu}`);
  console.log(
    `seeded ${N} machines in ${(performance.now() - t0).toFixed(0)} ms (one transaction, via the repository)`,
  );
  console.log(`autocannon: ${CONNECTIONS} connections, ${SECONDS} s per run\n`);

  const report = (name: string, r: CannonResult) => {
    const errors = r.errors + r.non2xx;
    console.log(
      `${name.padEnd(34)} ${r.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms${errors ? `   (${errors} errors/non-2xx!)` : ''}`,
    );
  };

  report(
    'GET /machines?limit=100',
    await autocannon({
      url: `${base}/api/v1/machines?limit=100`,
      headers,
      connections: CONNECTIONS,
      duration: SECONDS,
    }),
  );
  report(
    'GET /machines?limit=100&status=READY',
    await autocannon({
      url: `${base}/api/v1/machines?limit=100&status=READY&sort=hostname`,
      headers,
      connections: CONNECTIONS,
      duration: SECONDS,
    }),
  );

  for (const limit of [100, 1000]) {
    const times: number[] = [];
    for (let run = 0; run < 5; run++) {
      const start = performance.now();
      let next: string | null = null;
      let seen = 0;
      do {
        const url = `${base}/api/v1/machines?limit=${limit}${next ? `&cursor=${next}` : ''}`;
        const page = (await (await fetch(url, { headers })).json()) as {
          items: unknown[];
          next: string | null;
        };
        seen += page.items.length;
        next = page.next;
      } while (next);
      if (seen !== N) throw new Error(`walk saw ${seen} machines, expected ${N}`);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    console.log(
      `${`full walk of ${N}, pages of ${limit}`.padEnd(34)} median ${times[2]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[4]!.toFixed(0)}; 5 runs, sequential)`,
    );
  }

  let n = 0;
  const created = await autocannon({
    url: `${base}/api/v1/machines`,
    connections: CONNECTIONS,
    amount: 1000,
    requests: [
      {
        method: 'POST',
        headers,
        setupRequest: (req: Record<string, unknown>) => {
          const i = N + n++;
          return {
            ...req,
            body: JSON.stringify({ hostname: `new-${i}`, boot_mac: mac(i, '0e'), tags: ['bench'] }),
          };
        },
      },
    ],
  });
  report('POST /machines (1000 creates)', created);
  const total = (db.prepare('SELECT count(*) AS n FROM machines').get() as { n: number }).n;
  if (total !== N + 1000) console.log(`warning: expected ${N + 1000} machines, found ${total}`);
} finally {
  server.close();
  db.close();
  rmSync(root, { recursive: true, force: true });
}
