import { ValidationError } from '../lib/errors.js';
import {
  type CliContext,
  opt,
  type ParsedArgs,
  parseArgs,
  positiveInt,
  print,
  printJson,
  regionClient,
} from './client.js';
import { formatRecord, formatTable } from './table.js';

const HELP = `Usage: kiln subnets <list|show|add|update|delete> [options]

  list    [--managed true|false] [--rack-id N]
  show    <id>
  add     <cidr> [--name N] [--gateway IP] [--dns IP[,IP...]] [--range START-END]
          [--managed true|false] [--proxy true|false] [--rack-id N]
  update  <id> (same options as add, and --cidr; --gateway none / --range none / --rack-id none clear them)
  delete  <id>

  --json, --url, --api-key as for \`kiln machines\`
`;

interface SubnetView {
  id: number;
  name: string;
  cidr: string;
  gateway: string | null;
  dns_servers: string[];
  dynamic_range: { start: string; end: string } | null;
  managed: boolean;
  proxy_mode: boolean;
  rack_id: number | null;
}

function bool(v: string | undefined, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true' || v === 'yes' || v === '1') return true;
  if (v === 'false' || v === 'no' || v === '0') return false;
  throw new ValidationError(`${what} must be true or false, got '${v}'`);
}

function body(p: ParsedArgs): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  const name = opt(p, 'name');
  if (name !== undefined) b.name = name;
  const cidr = opt(p, 'cidr');
  if (cidr !== undefined) b.cidr = cidr;
  const gw = opt(p, 'gateway');
  if (gw !== undefined) b.gateway = gw === 'none' ? null : gw;
  const dns = opt(p, 'dns');
  if (dns !== undefined)
    b.dns_servers = dns === '' || dns === 'none' ? [] : dns.split(',').map((s) => s.trim());
  const range = opt(p, 'range');
  if (range !== undefined) {
    if (range === 'none') b.dynamic_range = null;
    else {
      const m = /^([^-\s]+)-([^-\s]+)$/.exec(range);
      if (!m) throw new ValidationError(`--range must be START-END, got '${range}'`);
      b.dynamic_range = { start: m[1], end: m[2] };
    }
  }
  const managed = bool(opt(p, 'managed'), '--managed');
  if (managed !== undefined) b.managed = managed;
  const proxy = bool(opt(p, 'proxy'), '--proxy');
  if (proxy !== undefined) b.proxy_mode = proxy;
  const rack = opt(p, 'rack-id');
  if (rack !== undefined) b.rack_id = rack === 'none' ? null : positiveInt(rack, '--rack-id');
  return b;
}

function id(rest: string[], usage: string): number {
  if (rest.length !== 1) throw new ValidationError(`usage: ${usage}`);
  return positiveInt(rest[0], 'subnet id')!;
}

export async function run(ctx: CliContext): Promise<number | undefined> {
  const p = parseArgs(ctx.args, {
    options: ['name', 'cidr', 'gateway', 'dns', 'range', 'managed', 'proxy', 'rack-id'],
  });
  const [sub, ...rest] = p.positional;
  if (p.flags.has('help') || sub === undefined || sub === 'help') {
    print(HELP);
    return sub === undefined && !p.flags.has('help') ? 2 : 0;
  }
  const json = p.flags.has('json');
  const client = regionClient(p, ctx.configFile);
  const out = (s: SubnetView, verb: string) =>
    print(json ? JSON.stringify(s, null, 2) : `${verb} subnet ${s.id} (${s.cidr})`);
  switch (sub) {
    case 'list': {
      const q = new URLSearchParams();
      const managed = bool(opt(p, 'managed'), '--managed');
      if (managed !== undefined) q.set('managed', String(managed));
      const rack = opt(p, 'rack-id');
      if (rack !== undefined) q.set('rack_id', String(positiveInt(rack, '--rack-id')));
      const items: SubnetView[] = [];
      for await (const s of client.walk<SubnetView>('/api/v1/subnets', q)) items.push(s);
      if (json) printJson(items);
      else
        print(
          formatTable(
            ['ID', 'CIDR', 'NAME', 'GATEWAY', 'DNS', 'DYNAMIC_RANGE', 'MANAGED', 'PROXY', 'RACK'],
            items.map((s) => [
              s.id,
              s.cidr,
              s.name,
              s.gateway,
              s.dns_servers.join(','),
              s.dynamic_range ? `${s.dynamic_range.start}-${s.dynamic_range.end}` : null,
              s.managed ? 'yes' : 'no',
              s.proxy_mode ? 'yes' : 'no',
              s.rack_id,
            ]),
          ),
        );
      return 0;
    }
    case 'show': {
      const s = await client.request<SubnetView>(
        'GET',
        `/api/v1/subnets/${id(rest, 'kiln subnets show <id>')}`,
      );
      print(json ? JSON.stringify(s, null, 2) : formatRecord(Object.entries(s)));
      return 0;
    }
    case 'add': {
      if (rest.length !== 1) throw new ValidationError('usage: kiln subnets add <cidr> [options]');
      out(
        await client.request<SubnetView>('POST', '/api/v1/subnets', { ...body(p), cidr: rest[0] }),
        'created',
      );
      return 0;
    }
    case 'update': {
      const n = id(rest, 'kiln subnets update <id> [options]');
      const b = body(p);
      if (Object.keys(b).length === 0)
        throw new ValidationError('nothing to update: give at least one option (see --help)');
      out(await client.request<SubnetView>('PATCH', `/api/v1/subnets/${n}`, b), 'updated');
      return 0;
    }
    case 'delete': {
      const n = id(rest, 'kiln subnets delete <id>');
      await client.request('DELETE', `/api/v1/subnets/${n}`);
      if (json) printJson({ deleted: n });
      else print(`deleted subnet ${n}`);
      return 0;
    }
    default:
      throw new ValidationError(`unknown subcommand '${sub}': use list, show, add, update or delete`);
  }
}
