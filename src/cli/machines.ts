import { ValidationError } from '../lib/errors.js';
import {
  ApiError,
  type CliContext,
  keyValues,
  opt,
  type ParsedArgs,
  parseArgs,
  positiveInt,
  print,
  printJson,
  type RegionClient,
  regionClient,
} from './client.js';
import { formatRecord, formatTable } from './table.js';

const HELP = `Usage: kiln machines <list|show|add|update|delete> [options]

  list    [--status S[,S...]] [--hostname H] [--mac M] [--tag T] [--zone Z] [--pool P]
          [--arch A] [--sort FIELD|-FIELD] [--limit N]       all pages unless --limit
  show    <system_id|hostname>
  add     [--hostname H] [--arch amd64/generic] [--mac BOOT_MAC] [--interface MAC[,NAME]]...
          [--power-type T] [--power-param k=v]... [--zone Z] [--pool P] [--tag T]...
          [--status S] [--description D]
  update  <system_id|hostname> (same options as add; --tag/--interface replace the lists)
  delete  <system_id|hostname>...

Options for every subcommand:
  --json          machine-readable output
  --url URL       region URL (default $KILN_URL, else http://127.0.0.1:<region.http.port>)
  --api-key KEY   API key (default $KILN_API_KEY, else <data_dir>/cli-api-key)
`;

const SPEC = {
  options: [
    'status',
    'hostname',
    'mac',
    'tag',
    'zone',
    'pool',
    'arch',
    'sort',
    'limit',
    'interface',
    'power-type',
    'power-param',
    'description',
  ],
};

interface MachineView {
  system_id: string;
  hostname: string;
  architecture: string;
  status: string;
  boot_mac: string | null;
  interfaces: Array<{ name: string; mac: string; is_boot: boolean }>;
  power_type: string;
  power_parameters: Record<string, unknown>;
  zone: string;
  pool: string;
  tags: string[];
  description: string;
  hardware: unknown;
  created_at: string;
  updated_at: string;
}

function body(p: ParsedArgs): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    if (v !== undefined) b[k] = v;
  };
  set('hostname', opt(p, 'hostname'));
  set('architecture', opt(p, 'arch'));
  set('boot_mac', opt(p, 'mac'));
  set('status', opt(p, 'status'));
  set('description', opt(p, 'description'));
  set('power_type', opt(p, 'power-type'));
  set('power_parameters', keyValues(p.options['power-param'], '--power-param'));
  set('zone', opt(p, 'zone'));
  set('pool', opt(p, 'pool'));
  set('tags', p.options.tag);
  set(
    'interfaces',
    p.options.interface?.map((s) => {
      const [mac, name] = s.split(',');
      return name ? { mac, name } : { mac };
    }),
  );
  return b;
}

/** A system id, or failing that a hostname: people remember names. */
async function resolve(client: RegionClient, ref: string): Promise<MachineView> {
  try {
    return await client.request<MachineView>('GET', `/api/v1/machines/${encodeURIComponent(ref)}`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    const page = await client.request<{ items: MachineView[] }>(
      'GET',
      `/api/v1/machines?hostname=${encodeURIComponent(ref)}`,
    );
    if (page.items[0]) return page.items[0];
    throw new ApiError(404, 'KILN_ERR_NOT_FOUND', `no machine with system_id or hostname '${ref}'`);
  }
}

function show(m: MachineView): string {
  return formatRecord([
    ['system_id', m.system_id],
    ['hostname', m.hostname],
    ['status', m.status],
    ['architecture', m.architecture],
    ['boot_mac', m.boot_mac],
    ['interfaces', m.interfaces.map((i) => `${i.name} ${i.mac}${i.is_boot ? ' (boot)' : ''}`).join(', ')],
    ['power_type', m.power_type],
    ['power_parameters', m.power_parameters],
    ['zone', m.zone],
    ['pool', m.pool],
    ['tags', m.tags.join(', ')],
    ['description', m.description],
    ['hardware', m.hardware],
    ['created_at', m.created_at],
    ['updated_at', m.updated_at],
  ]);
}

export async function run(ctx: CliContext): Promise<number | undefined> {
  const p = parseArgs(ctx.args, SPEC);
  const [sub, ...rest] = p.positional;
  if (p.flags.has('help') || sub === undefined || sub === 'help') {
    print(HELP);
    return sub === undefined && !p.flags.has('help') ? 2 : 0;
  }
  const json = p.flags.has('json');
  const client = regionClient(p, ctx.configFile);
  switch (sub) {
    case 'list': {
      const q = new URLSearchParams();
      for (const [flag, param] of [
        ['status', 'status'],
        ['hostname', 'hostname'],
        ['mac', 'mac'],
        ['tag', 'tag'],
        ['zone', 'zone'],
        ['pool', 'pool'],
        ['arch', 'architecture'],
        ['sort', 'sort'],
      ] as const) {
        const v = opt(p, flag);
        if (v !== undefined) q.set(param, v);
      }
      const items: MachineView[] = [];
      for await (const m of client.walk<MachineView>(
        '/api/v1/machines',
        q,
        positiveInt(opt(p, 'limit'), '--limit'),
      )) {
        items.push(m);
      }
      if (json) printJson(items);
      else
        print(
          formatTable(
            ['SYSTEM_ID', 'HOSTNAME', 'STATUS', 'ARCH', 'BOOT_MAC', 'POWER', 'ZONE', 'POOL', 'TAGS'],
            items.map((m) => [
              m.system_id,
              m.hostname,
              m.status,
              m.architecture,
              m.boot_mac,
              m.power_type,
              m.zone,
              m.pool,
              m.tags.join(','),
            ]),
          ),
        );
      return 0;
    }
    case 'show': {
      if (rest.length !== 1) throw new ValidationError('usage: kiln machines show <system_id|hostname>');
      const m = await resolve(client, rest[0]!);
      print(json ? JSON.stringify(m, null, 2) : show(m));
      return 0;
    }
    case 'add': {
      if (rest.length) throw new ValidationError(`unexpected argument '${rest[0]}' (see --help)`);
      const m = await client.request<MachineView>('POST', '/api/v1/machines', body(p));
      print(json ? JSON.stringify(m, null, 2) : `created ${m.system_id} (${m.hostname})`);
      return 0;
    }
    case 'update': {
      if (rest.length !== 1)
        throw new ValidationError('usage: kiln machines update <system_id|hostname> [options]');
      const b = body(p);
      if (Object.keys(b).length === 0)
        throw new ValidationError('nothing to update: give at least one option (see --help)');
      const cur = await resolve(client, rest[0]!);
      const m = await client.request<MachineView>('PATCH', `/api/v1/machines/${cur.system_id}`, b);
      print(json ? JSON.stringify(m, null, 2) : `updated ${m.system_id} (${m.hostname})`);
      return 0;
    }
    case 'delete': {
      if (rest.length === 0) throw new ValidationError('usage: kiln machines delete <system_id|hostname>...');
      const deleted: string[] = [];
      for (const ref of rest) {
        const cur = await resolve(client, ref);
        await client.request('DELETE', `/api/v1/machines/${cur.system_id}`);
        deleted.push(cur.system_id);
        if (!json) print(`deleted ${cur.system_id} (${cur.hostname})`);
      }
      if (json) printJson({ deleted });
      return 0;
    }
    default:
      throw new ValidationError(`unknown subcommand '${sub}': use list, show, add, update or delete`);
  }
}
