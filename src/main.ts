#!/usr/bin/env node
/**
 * kiln's entry point: argv → config → the command. This is the only module that sees both roles;
 * region/ and rack/ meet only through rpc/.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config/load.js';
import { describeError, KilnError } from './lib/errors.js';
import { createLogger } from './lib/logger.js';

export interface CommandContext {
  /** Arguments after the command name. */
  args: string[];
  /** --config value, if given before or after the command. */
  configFile: string | undefined;
}

interface Command {
  summary: string;
  run(ctx: CommandContext): Promise<number | undefined>;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function daemon(role: 'region' | 'rack' | 'all', ctx: CommandContext): Promise<number> {
  const { config, file, warnings } = loadConfig({ file: ctx.configFile });
  const logger = createLogger({ level: config.log.level, name: `kiln-${role}` });
  for (const w of warnings) logger.warn(w);
  logger.info({ config_file: file, data_dir: config.data_dir, version: version() }, `kiln ${role} starting`);
  process.title =
    role === 'all' ? 'kiln-all: main' : `kiln-${role}: ${role === 'region' ? 'supervisor' : 'main'}`;

  // Region first: under `kiln all` it creates the RPC secret the rack then reads.
  const stops: Array<() => Promise<void>> = [];
  if (role !== 'rack') {
    const { startRegion } = await import('./region/index.js');
    const region = await startRegion({ config, logger: logger.child({ role: 'region' }) });
    stops.push(() => region.stop());
  }
  if (role !== 'region') {
    const { startRack } = await import('./rack/index.js');
    const rack = await startRack({ config, logger: logger.child({ role: 'rack' }) });
    stops.push(() => rack.stop());
  }
  logger.info(`kiln ${role} running`);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info({ signal }, `kiln ${role} stopping`);
  // A second signal while draining means "now".
  process.once(signal, () => process.exit(130));
  for (const stop of stops.reverse()) {
    try {
      await stop();
    } catch (err) {
      logger.error({ err }, 'error while stopping');
    }
  }
  return 0;
}

const commands: Record<string, Command> = {
  region: {
    summary: 'run the region: API, UI, inventory, workflows, RPC server',
    run: (c) => daemon('region', c),
  },
  rack: { summary: 'run the rack: DHCP, TFTP, boot HTTP, image cache, power', run: (c) => daemon('rack', c) },
  all: { summary: 'run region and rack on this host (the embedded default)', run: (c) => daemon('all', c) },
  init: {
    summary: 'create data_dir, the database, the RPC secret and the region CA',
    run: async (c) => (await import('./cli/init.js')).run(c),
  },
  apikey: {
    summary: 'create, list or revoke API keys (local data_dir, no API needed)',
    run: async (c) => (await import('./cli/apikey.js')).run(c),
  },
  machines: {
    summary: 'list, show, add, update, delete machines',
    run: async (c) => (await import('./cli/machines.js')).run(c),
  },
  subnets: {
    summary: 'list, show, add, update, delete subnets',
    run: async (c) => (await import('./cli/subnets.js')).run(c),
  },
  events: {
    summary: "show a machine's event log",
    run: async (c) => (await import('./cli/events.js')).run(c),
  },
  images: {
    summary: 'import and list boot images',
    run: async (c) => (await import('./cli/images.js')).run(c),
  },
};

/** Hidden commands used by kiln's own process model (forked workers); not shown in --help. */
const internal: Record<string, Command> = {
  '__region-worker': { summary: '', run: async (c) => (await import('./region/worker-main.js')).run(c) },
  '__rack-worker': { summary: '', run: async (c) => (await import('./rack/worker-main.js')).run(c) },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'kiln — bare-metal provisioning: network boot, inventory, workflows',
    '',
    'Usage: kiln [--config FILE] <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  --config FILE  YAML config (default: $KILN_CONFIG, else /etc/kiln/kiln.yaml when present)',
    '  --help, -h     this help; `kiln <command> --help` for a command',
    '  --version, -v  print the version',
    '',
    'Every config key can be set from the environment: rack.tftp.port → KILN_RACK_TFTP_PORT.',
    'CLI commands find the region through KILN_URL and KILN_API_KEY.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const rest: string[] = [];
  let configFile: string | undefined;
  let name: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      configFile = argv[++i];
      if (configFile === undefined) {
        process.stderr.write('kiln: --config needs a file path\n');
        return 2;
      }
    } else if (a.startsWith('--config=')) configFile = a.slice('--config='.length);
    else if (name === undefined && (a === '--version' || a === '-v')) {
      process.stdout.write(`kiln ${version()}\n`);
      return 0;
    } else if (name === undefined && (a === '--help' || a === '-h')) {
      process.stdout.write(`${help()}\n`);
      return 0;
    } else if (name === undefined && !a.startsWith('-')) name = a;
    else rest.push(a);
  }
  if (name === undefined) {
    process.stderr.write(`${help()}\n`);
    return 2;
  }
  const command = commands[name] ?? internal[name];
  if (!command) {
    process.stderr.write(`kiln: unknown command '${name}'. Run 'kiln --help' for the list.\n`);
    return 2;
  }
  try {
    return (await command.run({ args: rest, configFile })) ?? 0;
  } catch (err) {
    if (err instanceof KilnError) {
      process.stderr.write(`kiln ${name}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`kiln ${name}: unexpected error: ${describeError(err)}\n`);
    if (process.env.KILN_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`kiln: ${describeError(err)}\n`);
      process.exitCode = 1;
    },
  );
}
