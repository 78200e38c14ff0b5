import { ValidationError } from '../lib/errors.js';
import {
  ApiError,
  type CliContext,
  opt,
  parseArgs,
  positiveInt,
  print,
  printJson,
  regionClient,
} from './client.js';
import { formatTable } from './table.js';

const HELP = `Usage: kiln events <system_id|hostname> [--limit N] [--order asc|desc] [--level L] [--type T] [--json]

A machine's event log (its boot timeline), oldest first unless --order desc.
  --limit N     at most N events (default: all)
  --level L     debug, info, warning or error
  --url, --api-key as for \`kiln machines\`
`;

interface EventView {
  id: number;
  type: string;
  level: string;
  text: string;
  data: unknown;
  created_at: string;
}

export async function run(ctx: CliContext): Promise<number | undefined> {
  const p = parseArgs(ctx.args, { options: ['limit', 'order', 'level', 'type'] });
  if (p.flags.has('help')) {
    print(HELP);
    return 0;
  }
  if (p.positional.length !== 1) {
    process.stderr.write(HELP);
    return 2;
  }
  const client = regionClient(p, ctx.configFile);
  const ref = p.positional[0]!;
  let systemId = ref;
  try {
    await client.request('GET', `/api/v1/machines/${encodeURIComponent(ref)}`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    const page = await client.request<{ items: Array<{ system_id: string }> }>(
      'GET',
      `/api/v1/machines?hostname=${encodeURIComponent(ref)}`,
    );
    if (!page.items[0])
      throw new ApiError(404, 'KILN_ERR_NOT_FOUND', `no machine with system_id or hostname '${ref}'`);
    systemId = page.items[0].system_id;
  }
  const q = new URLSearchParams();
  for (const k of ['order', 'level', 'type']) {
    const v = opt(p, k);
    if (v !== undefined) q.set(k, v);
  }
  const order = opt(p, 'order');
  if (order !== undefined && order !== 'asc' && order !== 'desc')
    throw new ValidationError('--order must be asc or desc');
  const items: EventView[] = [];
  for await (const e of client.walk<EventView>(
    `/api/v1/machines/${systemId}/events`,
    q,
    positiveInt(opt(p, 'limit'), '--limit'),
  )) {
    items.push(e);
  }
  if (p.flags.has('json')) printJson(items);
  else
    print(
      formatTable(
        ['TIME', 'LEVEL', 'TYPE', 'TEXT'],
        items.map((e) => [e.created_at, e.level, e.type, e.text]),
      ),
    );
  return 0;
}
