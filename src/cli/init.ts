import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { silentLogger } from '../lib/logger.js';
import { ensureRegionSecrets } from '../region/secrets.js';
import { openRegionDatabase, REGION_DB_FILE } from '../storage/region-db.js';

const HELP = `Usage: kiln init

Creates what the region needs in data_dir, keeping anything already there:
  data_dir (mode 0700), the database (region.db, migrated), the RPC shared secret (secret, 0600),
  the region CA and RPC certificate (tls/). Safe to run again. A rack on another host needs a copy
  of <data_dir>/secret (point rack.secret_file at it).`;

export async function run(ctx: { args: string[]; configFile: string | undefined }): Promise<number> {
  if (ctx.args.includes('--help') || ctx.args.includes('-h')) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (ctx.args.length > 0) {
    process.stderr.write(`kiln init: unexpected argument ${ctx.args[0]}\n${HELP}\n`);
    return 2;
  }
  const { config } = loadConfig({ file: ctx.configFile });
  const dataDir = config.data_dir;
  const made: string[] = [];
  if (!existsSync(dataDir)) made.push(dataDir);
  const dbPath = join(dataDir, REGION_DB_FILE);
  const dbExisted = existsSync(dbPath);
  const db = openRegionDatabase(dataDir, silentLogger);
  db.close();
  if (!dbExisted) made.push(dbPath);
  const { created } = await ensureRegionSecrets(dataDir, silentLogger);
  made.push(...created);
  if (made.length === 0) {
    process.stdout.write(`kiln init: ${dataDir} is already initialised; nothing to do\n`);
  } else {
    process.stdout.write(`kiln init: created in ${dataDir}:\n${made.map((p) => `  ${p}`).join('\n')}\n`);
  }
  return 0;
}
