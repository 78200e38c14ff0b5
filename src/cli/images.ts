import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { KilnError, ValidationError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import {
  ApiError,
  CLI_KEY_FILE,
  type CliContext,
  loadCliConfig,
  opt,
  type ParsedArgs,
  parseArgs,
  print,
  printJson,
  regionClient,
} from './client.js';
import { createProgress } from './progress.js';
import { formatTable } from './table.js';

const HELP = `Usage: kiln images <import|list> [options]

  import  --name N --arch ARCH/SUBARCH --kernel F|URL --initrd F|URL [--squashfs F|URL]
          [--kind K] [--local]
          Files may be local paths (uploaded to the region, sha256-checked) or http(s) URLs
          (fetched by the region). Re-importing a name/arch/kind replaces its files atomically.
          --kind   what the image is for (default: os; kiln's default image uses ephemeral)
          --local  act on data_dir directly instead of through the API (no region running)
  list    [--local]

  --json for scripts; --url, --api-key as for \`kiln machines\`. Progress goes to stderr.
`;

interface ResourceView {
  id: number;
  name: string;
  architecture: string;
  kind: string;
  files: Array<{ name: string; filetype: string; sha256: string; size: number }>;
  updated_at: string;
}

interface FileArg {
  name: string;
  filetype: string;
  source: string;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

function fileArgs(p: ParsedArgs): FileArg[] {
  const out: FileArg[] = [];
  for (const [opt_, filetype, name] of [
    ['kernel', 'kernel', 'vmlinuz'],
    ['initrd', 'initrd', 'initrd.img'],
    ['squashfs', 'squashfs', 'squashfs'],
  ] as const) {
    const source = opt(p, opt_);
    if (source === undefined) continue;
    if (!isUrl(source)) {
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(source);
      } catch {
        throw new ValidationError(`--${opt_}: no such file ${source}`);
      }
      if (!st.isFile()) throw new ValidationError(`--${opt_}: ${source} is not a regular file`);
    }
    out.push({ name, filetype, source });
  }
  if (!out.some((f) => f.filetype === 'kernel') || !out.some((f) => f.filetype === 'initrd')) {
    throw new ValidationError('import needs --kernel and --initrd (local files or http(s) URLs)');
  }
  return out;
}

function required(p: ParsedArgs, name: string): string {
  const v = opt(p, name);
  if (v === undefined || v === '') throw new ValidationError(`import needs --${name}`);
  return v;
}

async function sha256Of(path: string, label: string): Promise<string> {
  const total = statSync(path).size;
  const bar = createProgress(`${label} (sha256)`);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    bar.update(bytes, total);
  }
  bar.done(bytes);
  return hash.digest('hex');
}

/** The API key, found the way client.ts finds it (--api-key, $KILN_API_KEY, <data_dir>/cli-api-key). */
function apiKey(p: ParsedArgs, configFile: string | undefined): string {
  const k = opt(p, 'api-key') ?? process.env.KILN_API_KEY;
  if (k) return k;
  return readFileSync(join(loadCliConfig(configFile).data_dir, CLI_KEY_FILE), 'utf8').trim();
}

/** Whether the region already stores this content (then there is nothing to upload). */
async function regionHas(url: string, key: string, sha256: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/images/${sha256}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${key}` },
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Streams a local file to `POST /api/v1/images?sha256=` with a progress bar. */
function upload(url: string, key: string, path: string, sha256: string, label: string): Promise<void> {
  const total = statSync(path).size;
  const target = new URL(`${url}/api/v1/images?sha256=${sha256}`);
  const bar = createProgress(`${label} (upload)`);
  return new Promise((resolve, reject) => {
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/octet-stream',
        'content-length': String(total),
      },
    });
    let responded = false;
    const fail = (err: Error) => {
      // The region may answer before reading the whole body (it already has the file, or refuses
      // it) and close: the write then fails with EPIPE, but the answer is what counts.
      if (responded) return;
      reject(
        err instanceof KilnError
          ? err
          : new KilnError('KILN_ERR_UNREACHABLE', `upload to ${url} failed: ${err.message}`),
      );
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        if (res.statusCode === 200 || res.statusCode === 201) {
          bar.done(total);
          resolve();
          return;
        }
        let e: { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
        try {
          e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: typeof e }).error;
        } catch {
          e = undefined;
        }
        reject(
          new ApiError(
            res.statusCode ?? 0,
            e?.code ?? 'KILN_ERR_HTTP',
            e?.message ?? `HTTP ${res.statusCode}`,
            e?.details,
          ),
        );
      });
    });
    const file = createReadStream(path, { highWaterMark: 1 << 20 });
    let sent = 0;
    file.on('data', (c) => {
      sent += c.length;
      bar.update(sent, total);
    });
    file.on('error', fail);
    file.pipe(req);
  });
}

async function importViaApi(p: ParsedArgs, ctx: CliContext): Promise<ResourceView> {
  const client = regionClient(p, ctx.configFile);
  const files = fileArgs(p);
  const body = {
    name: required(p, 'name'),
    architecture: required(p, 'arch'),
    kind: opt(p, 'kind') ?? 'os',
    files: [] as Array<Record<string, string>>,
  };
  for (const f of files) {
    if (isUrl(f.source)) {
      body.files.push({ name: f.name, filetype: f.filetype, url: f.source });
      continue;
    }
    const sha = await sha256Of(f.source, f.name);
    const key = apiKey(p, ctx.configFile);
    if (await regionHas(client.url, key, sha)) process.stderr.write(`${f.name}: the region has it already\n`);
    else await upload(client.url, key, f.source, sha, f.name);
    body.files.push({ name: f.name, filetype: f.filetype, sha256: sha });
  }
  if (files.some((f) => isUrl(f.source))) process.stderr.write('region is fetching the URL(s)...\n');
  return client.request<ResourceView>('POST', '/api/v1/boot-resources/import', body);
}

async function importLocal(p: ParsedArgs, ctx: CliContext): Promise<ResourceView> {
  const files = fileArgs(p);
  const spec = {
    name: required(p, 'name'),
    architecture: required(p, 'arch'),
    kind: opt(p, 'kind') ?? 'os',
  };
  const config = loadCliConfig(ctx.configFile);
  // Loaded lazily: API-only use of the CLI never opens SQLite.
  const { openRegionDatabase } = await import('../storage/region-db.js');
  const { ImageStore } = await import('../region/image-store.js');
  const { importBootResource } = await import('../region/image-import.js');
  const db = openRegionDatabase(config.data_dir, silentLogger);
  try {
    const store = new ImageStore({ dataDir: config.data_dir, logger: silentLogger });
    store.removeStrayTempFiles();
    const bars = new Map<string, ReturnType<typeof createProgress>>();
    const r = await importBootResource(
      db,
      store,
      { ...spec, files: files.map((f) => ({ name: f.name, filetype: f.filetype, source: f.source })) },
      {
        onProgress: (ev) => {
          let bar = bars.get(ev.label);
          if (!bar) {
            bar = createProgress(ev.label);
            bars.set(ev.label, bar);
          }
          if (ev.done) bar.done(ev.bytes);
          else bar.update(ev.bytes, ev.total);
        },
      },
    );
    return { ...r, files: r.files.map(({ path: _p, ...f }) => f) };
  } finally {
    db.close();
  }
}

async function listLocal(ctx: CliContext): Promise<ResourceView[]> {
  const config = loadCliConfig(ctx.configFile);
  const { openRegionDatabase } = await import('../storage/region-db.js');
  const { listBootResources } = await import('../storage/boot-resources.js');
  const db = openRegionDatabase(config.data_dir, silentLogger);
  try {
    const out: ResourceView[] = [];
    let cursor: string | undefined;
    do {
      const page = listBootResources(db, { limit: 1000, cursor });
      for (const r of page.items) out.push({ ...r, files: r.files.map(({ path: _p, ...f }) => f) });
      cursor = page.next ?? undefined;
    } while (cursor);
    return out;
  } finally {
    db.close();
  }
}

function mib(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)}M` : `${(n / 1024).toFixed(0)}K`;
}

export async function run(ctx: CliContext): Promise<number | undefined> {
  const p = parseArgs(ctx.args, {
    options: ['name', 'arch', 'kind', 'kernel', 'initrd', 'squashfs'],
    flags: ['local'],
  });
  const [sub, ...rest] = p.positional;
  if (p.flags.has('help') || sub === undefined || sub === 'help') {
    print(HELP);
    return sub === undefined && !p.flags.has('help') ? 2 : 0;
  }
  if (rest.length > 0) throw new ValidationError(`unexpected argument '${rest[0]}' (see --help)`);
  const json = p.flags.has('json');
  const local = p.flags.has('local');
  switch (sub) {
    case 'import': {
      const r = local ? await importLocal(p, ctx) : await importViaApi(p, ctx);
      if (json) printJson(r);
      else
        print(
          `imported ${r.name} ${r.architecture} (${r.kind}): ${r.files.map((f) => `${f.name} ${mib(f.size)} ${f.sha256.slice(0, 12)}`).join(', ')}`,
        );
      return 0;
    }
    case 'list': {
      let items: ResourceView[];
      if (local) items = await listLocal(ctx);
      else {
        items = [];
        const client = regionClient(p, ctx.configFile);
        for await (const r of client.walk<ResourceView>('/api/v1/boot-resources', new URLSearchParams())) {
          items.push(r);
        }
      }
      if (json) printJson(items);
      else
        print(
          formatTable(
            ['NAME', 'ARCH', 'KIND', 'FILES', 'UPDATED'],
            items.map((r) => [
              r.name,
              r.architecture,
              r.kind,
              r.files.map((f) => `${f.name}:${mib(f.size)}`).join(' '),
              r.updated_at,
            ]),
          ),
        );
      return 0;
    }
    default:
      throw new ValidationError(`unknown subcommand '${sub}' (see --help)`);
  }
}
