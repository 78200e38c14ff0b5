/**
 * Runs `kiln all` inside a lab namespace with its own data_dir, the default image imported and an
 * API key made, and talks to its region API with curl from inside the namespace (the lab is
 * isolated: the host cannot reach it). Default ports are free inside a fresh namespace.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { onAbort } from './cleanup.js';
import type { Lab } from './lab.js';

const run = promisify(execFile);
export const REPO = resolve(import.meta.dirname, '../..');
export const IMAGE_DIR = join(REPO, 'images/out');

export interface Kiln {
  pid: number;
  dataDir: string;
  logFile: string;
  apiKey: string;
  log(): string;
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Builds images/out (vmlinuz + initrd.img) when missing; cached and quick when present. */
export function ensureImage(): void {
  if (existsSync(join(IMAGE_DIR, 'vmlinuz')) && existsSync(join(IMAGE_DIR, 'initrd.img'))) return;
  execFileSync(process.execPath, [join(REPO, 'images/build.mjs')], { stdio: 'inherit', cwd: REPO });
}

function kilnArgv(args: string[]): string[] {
  return [process.execPath, '--import', 'tsx', join(REPO, 'src/main.ts'), ...args];
}

export async function startKiln(opts: { lab: Lab; dir: string; logLevel?: string }): Promise<Kiln> {
  const { lab, dir } = opts;
  const dataDir = join(dir, 'data');
  const configFile = join(dir, 'kiln.yaml');
  writeFileSync(
    configFile,
    [
      `data_dir: ${dataDir}`,
      'log:',
      `  level: ${opts.logLevel ?? 'debug'}`,
      'region:',
      '  workers: 1',
      `  url: http://${lab.address}:5240`,
      'rack:',
      `  advertise_address: ${lab.address}`,
      '  region_urls: [http://127.0.0.1:5240]',
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_CONFIG: configFile, NODE_ENV: 'test' };
  for (const k of Object.keys(env)) if (k.startsWith('KILN_') && k !== 'KILN_CONFIG') delete env[k];

  // The image and an API key go straight into data_dir before the daemon starts.
  await importImage(dataDir);
  const keyArgv = kilnArgv(['apikey', 'create', '--name', 'e2e', '--json']);
  const keyOut = execFileSync(keyArgv[0]!, keyArgv.slice(1), {
    env,
    cwd: REPO,
    encoding: 'utf8',
  });
  const apiKey = (JSON.parse(keyOut) as { key: string }).key;

  const logFile = join(dir, 'kiln.log');
  const out = openSync(logFile, 'w');
  const argv = lab.exec(kilnArgv(['all']));
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { env, cwd: REPO, stdio: ['ignore', out, out] });
  // kiln's supervisor stops its workers on SIGTERM; SIGKILL would leave them behind.
  const forget = onAbort(() => process.kill(child.pid!, 'SIGTERM'));
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      forget();
      r();
    }),
  );

  const kiln: Kiln = {
    pid: child.pid!,
    dataDir,
    logFile,
    apiKey,
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async api<T>(method: string, path: string, body?: unknown) {
      const args = [
        'curl',
        '-sS',
        '-m',
        '10',
        '-X',
        method,
        '-H',
        `Authorization: Bearer ${apiKey}`,
        '-w',
        '\n%{http_code}',
      ];
      if (body !== undefined)
        args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
      args.push(`http://127.0.0.1:5240${path}`);
      const argv2 = lab.exec(args);
      const { stdout } = await run(argv2[0]!, argv2.slice(1), { encoding: 'utf8' });
      const nl = stdout.lastIndexOf('\n');
      const text = stdout.slice(0, nl);
      return { status: Number(stdout.slice(nl + 1)), body: (text ? JSON.parse(text) : null) as T };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await until('kiln region /healthz', 60_000, async () => {
      if (child.exitCode !== null)
        throw new Error(`kiln exited with ${child.exitCode}:\n${kiln.log().slice(-3000)}`);
      try {
        return (await kiln.api('GET', '/healthz')).status === 200;
      } catch {
        return false;
      }
    });
  } catch (err) {
    await kiln.stop();
    throw err;
  }
  return kiln;
}

async function importImage(dataDir: string): Promise<void> {
  ensureImage();
  const { openRegionDatabase } = await import('../../src/storage/region-db.js');
  const { ImageStore } = await import('../../src/region/image-store.js');
  const { importBootResource } = await import('../../src/region/image-import.js');
  const { silentLogger } = await import('../../src/lib/logger.js');
  const db = openRegionDatabase(dataDir, silentLogger);
  try {
    await importBootResource(db, new ImageStore({ dataDir, logger: silentLogger }), {
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [
        { name: 'vmlinuz', filetype: 'kernel', source: join(IMAGE_DIR, 'vmlinuz') },
        { name: 'initrd.img', filetype: 'initrd', source: join(IMAGE_DIR, 'initrd.img') },
      ],
    });
  } finally {
    db.close();
  }
}

/** Polls `check` every 250 ms until it is truthy or the deadline passes (then throws naming `what`). */
export async function until<T>(
  what: string,
  ms: number,
  check: () => Promise<T | false | null | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Marks the lab subnet managed and assigned to the (first) registered rack, with a dynamic range. */
export async function manageLabSubnet(kiln: Kiln, lab: Lab): Promise<void> {
  const systemId = await until('the rack to register', 60_000, async () => {
    const r = await kiln.api<{ items: Array<{ system_id: string; connected: boolean }> }>(
      'GET',
      '/api/v1/racks',
    );
    return r.status === 200 && r.body.items[0]?.connected ? r.body.items[0].system_id : false;
  });
  // The subnets API takes the rack's numeric id, which /api/v1/racks does not show (yet): read it
  // from the region database, read-only.
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(kiln.dataDir, 'region.db'), { readonly: true, fileMustExist: true });
  let rackId: number;
  try {
    rackId = (db.prepare('SELECT id FROM racks WHERE system_id = ?').get(systemId) as { id: number }).id;
  } finally {
    db.close();
  }
  const net = lab.address.split('.').slice(0, 3).join('.');
  const r = await kiln.api('POST', '/api/v1/subnets', {
    cidr: lab.cidr,
    managed: true,
    rack_id: rackId,
    dynamic_range: { start: `${net}.100`, end: `${net}.199` },
  });
  if (r.status !== 201 && r.status !== 200)
    throw new Error(`creating the lab subnet failed: ${r.status} ${JSON.stringify(r.body)}`);
}
