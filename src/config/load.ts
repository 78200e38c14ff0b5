import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, describeError } from '../lib/errors.js';
import { InvalidValue, isLeaf, type Leaf, type Spec } from './leaf.js';
import { type Config, schema } from './schema.js';

export const DEFAULT_CONFIG_FILE = '/etc/kiln/kiln.yaml';

/** Environment variables that belong to kiln but are not config keys. */
const NOT_CONFIG_KEYS = new Set([
  'KILN_CONFIG',
  'KILN_URL',
  'KILN_API_KEY',
  'KILN_NO_NATIVE',
  'KILN_TEST_ROOT',
]);

export interface LoadOptions {
  /** Path from --config. Falls back to KILN_CONFIG, then /etc/kiln/kiln.yaml when present. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Overrides applied last (dotted keys), e.g. from command-line flags. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when only defaults and the environment applied. */
  file: string | null;
  warnings: string[];
}

/** Every leaf of the schema by dotted key, in schema order. */
export function configKeys(spec: Spec = schema, prefix = ''): Array<[string, Leaf<unknown>]> {
  const out: Array<[string, Leaf<unknown>]> = [];
  for (const [k, v] of Object.entries(spec)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(v)) out.push([key, v]);
    else out.push(...configKeys(v, key));
  }
  return out;
}

export function envNameOf(key: string): string {
  return `KILN_${key.toUpperCase().replace(/\./g, '_')}`;
}

function parseLeaf(key: string, leaf: Leaf<unknown>, raw: unknown, fromEnv: boolean): unknown {
  try {
    return leaf.parse(raw, fromEnv);
  } catch (err) {
    const shown = JSON.stringify(raw) ?? String(raw);
    const why = err instanceof InvalidValue ? '' : ` (${describeError(err)})`;
    throw new ConfigError(key, `${shown.slice(0, 80)} is not allowed${why}; expected ${leaf.allowed}`);
  }
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) node = node[p] as Record<string, unknown>;
  node[parts.at(-1)!] = value;
}

function defaults(spec: Spec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = isLeaf(v) ? structuredClone(v.default) : defaults(v);
  return out;
}

/** Walk a parsed YAML document against the schema, collecting dotted keys; unknown keys are errors. */
function flattenFile(doc: unknown, spec: Spec, prefix: string, out: Map<string, unknown>): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(prefix || '(top level)', 'must be a mapping of keys');
  }
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const node = spec[k];
    if (node === undefined) {
      const known = Object.keys(spec).join(', ');
      throw new ConfigError(key, `unknown key; known keys here: ${known}`);
    }
    if (isLeaf(node)) out.set(key, v);
    else flattenFile(v, node, key, out);
  }
}

/**
 * Build the one typed Config: defaults, then the YAML file, then KILN_* variables, then overrides.
 * Throws ConfigError naming the key on any unknown key or bad value.
 */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const warnings: string[] = [];
  const keys = configKeys();
  const leaves = new Map(keys);
  const config = defaults(schema);

  let file: string | null = null;
  const explicit = options.file ?? env.KILN_CONFIG;
  if (explicit) file = explicit;
  else if (existsSync(DEFAULT_CONFIG_FILE)) file = DEFAULT_CONFIG_FILE;

  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${file}: ${describeError(err)}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new ConfigError('--config', `${file} is not valid YAML: ${describeError(err)}`);
    }
    const flat = new Map<string, unknown>();
    flattenFile(doc, schema, '', flat);
    for (const [key, raw] of flat) setPath(config, key, parseLeaf(key, leaves.get(key)!, raw, false));
  }

  const byEnv = new Map(keys.map(([key]) => [envNameOf(key), key]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('KILN_') || raw === undefined) continue;
    const key = byEnv.get(name);
    if (key === undefined) {
      if (!NOT_CONFIG_KEYS.has(name))
        warnings.push(`environment variable ${name} matches no config key; ignored`);
      continue;
    }
    setPath(config, key, parseLeaf(`${key} (from ${name})`, leaves.get(key)!, raw, true));
  }

  for (const [key, raw] of Object.entries(options.overrides ?? {})) {
    const leaf = leaves.get(key);
    if (!leaf) throw new ConfigError(key, 'unknown key');
    setPath(config, key, parseLeaf(key, leaf, raw, typeof raw === 'string'));
  }

  // Relative data_dir (`./.kiln` under npm start) means relative to where kiln was started; fix it
  // once here so child processes and tools that change directory (openssl) agree.
  config.data_dir = resolve(config.data_dir as string);
  return { config: config as unknown as Config, file, warnings };
}
