import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../storage/api-keys.js';
import { openRegionDatabase } from '../storage/region-db.js';
import { CLI_KEY_FILE, type CliContext, loadCliConfig, opt, parseArgs, print, printJson } from './client.js';
import { formatTable } from './table.js';

const HELP = `Usage: kiln apikey <create|list|revoke> [options]

Works on the local data_dir (no running region needed), so the first key can be made.
  create --name N [--json] [--save]   make a key; it is printed once and stored only hashed.
                                      --save also writes it to <data_dir>/${CLI_KEY_FILE} (mode 0600),
                                      where the kiln CLI finds it when KILN_API_KEY is unset.
  list [--json]                       keys with their prefix, creation, last use and revocation
  revoke <id|name>                    the key stops working at once (403)
`;

export async function run(ctx: CliContext): Promise<number | undefined> {
  const p = parseArgs(ctx.args, { options: ['name'], flags: ['save'] });
  const [sub, ...rest] = p.positional;
  if (p.flags.has('help') || sub === undefined || sub === 'help') {
    print(HELP);
    return sub === undefined && !p.flags.has('help') ? 2 : 0;
  }
  const config = loadCliConfig(ctx.configFile);
  const db = openRegionDatabase(
    config.data_dir,
    createLogger({ level: 'warn', destination: process.stderr }),
  );
  try {
    const json = p.flags.has('json');
    switch (sub) {
      case 'create': {
        const name = opt(p, 'name');
        if (!name) throw new ValidationError('usage: kiln apikey create --name N [--json] [--save]');
        const { key, apiKey } = createApiKey(db, name);
        if (p.flags.has('save')) {
          const file = join(config.data_dir, CLI_KEY_FILE);
          writeFileSync(file, `${key}\n`, { mode: 0o600 });
          if (!json) process.stderr.write(`saved to ${file}\n`);
        }
        if (json) printJson({ ...apiKey, key });
        else {
          print(key);
          process.stderr.write(
            `API key '${apiKey.name}' (id ${apiKey.id}) created. It is shown only this once.\n`,
          );
        }
        return 0;
      }
      case 'list': {
        const keys = listApiKeys(db);
        if (json) printJson(keys);
        else
          print(
            formatTable(
              ['ID', 'NAME', 'PREFIX', 'CREATED', 'LAST_USED', 'REVOKED'],
              keys.map((k) => [k.id, k.name, `${k.prefix}…`, k.created_at, k.last_used_at, k.revoked_at]),
            ),
          );
        return 0;
      }
      case 'revoke': {
        if (rest.length !== 1) throw new ValidationError('usage: kiln apikey revoke <id|name>');
        const k = revokeApiKey(db, rest[0]!);
        if (json) printJson(k);
        else print(`revoked API key '${k.name}' (id ${k.id})`);
        return 0;
      }
      default:
        throw new ValidationError(`unknown subcommand '${sub}': use create, list or revoke`);
    }
  } finally {
    db.close();
  }
}
