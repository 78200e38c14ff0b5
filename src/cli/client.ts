import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { HttpError, KilnError, ValidationError } from '../lib/errors.js';

/**
 * What every API-backed CLI command shares: argument parsing, finding the region and the key, and
 * one clear line for any failure.
 *
 * The region URL: `--url`, else $KILN_URL, else http://127.0.0.1:<region.http.port> from config.
 * The API key: `--api-key`, else $KILN_API_KEY, else the file <data_dir>/cli-api-key that
 * `kiln apikey create --save` writes (mode 0600).
 */
export interface CliContext {
  args: string[];
  configFile: string | undefined;
}

export const CLI_KEY_FILE = 'cli-api-key';

export interface ArgSpec {
  /** Options that take a value (`--name N` or `--name=N`); repeatable ones collect every value. */
  options?: string[];
  /** Options without a value. */
  flags?: string[];
}

export interface ParsedArgs {
  positional: string[];
  options: Record<string, string[]>;
  flags: Set<string>;
}

const COMMON_OPTIONS = ['url', 'api-key'];
const COMMON_FLAGS = ['json', 'help'];

export function parseArgs(args: string[], spec: ArgSpec): ParsedArgs {
  const options = new Set([...(spec.options ?? []), ...COMMON_OPTIONS]);
  const flags = new Set([...(spec.flags ?? []), ...COMMON_FLAGS]);
  const out: ParsedArgs = { positional: [], options: {}, flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h') {
      out.flags.add('help');
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (a === '--') {
        out.positional.push(...args.slice(i + 1));
        break;
      }
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq === -1 ? undefined : eq);
    if (flags.has(name)) {
      if (eq !== -1) throw new ValidationError(`--${name} takes no value`);
      out.flags.add(name);
    } else if (options.has(name)) {
      const value = eq !== -1 ? a.slice(eq + 1) : args[++i];
      if (value === undefined) throw new ValidationError(`--${name} needs a value`);
      const list = out.options[name] ?? [];
      list.push(value);
      out.options[name] = list;
    } else {
      throw new ValidationError(`unknown option --${name} (see --help)`);
    }
  }
  return out;
}

/** The last value of an option, if given. */
export function opt(p: ParsedArgs, name: string): string | undefined {
  const v = p.options[name];
  return v ? v[v.length - 1] : undefined;
}

export function loadCliConfig(configFile: string | undefined): Config {
  return loadConfig({ file: configFile, env: process.env }).config;
}

/** An error answer from the region, carrying its stable code and status. */
export class ApiError extends HttpError {}

export interface RegionClient {
  url: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Follows `next` cursors, yielding items until `max` or the end. */
  walk<T = unknown>(path: string, query: URLSearchParams, max?: number): AsyncGenerator<T>;
}

export function regionClient(p: ParsedArgs, configFile: string | undefined): RegionClient {
  let config: Config | undefined;
  const cfg = () => (config ??= loadCliConfig(configFile));
  const url = (opt(p, 'url') ?? process.env.KILN_URL ?? `http://127.0.0.1:${cfg().region.http.port}`).replace(
    /\/+$/,
    '',
  );
  let key = opt(p, 'api-key') ?? process.env.KILN_API_KEY;
  if (!key) {
    const file = join(cfg().data_dir, CLI_KEY_FILE);
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch {
      throw new KilnError(
        'KILN_ERR_NO_API_KEY',
        `no API key: set KILN_API_KEY or --api-key, or run \`kiln apikey create --name cli --save\` (writes ${file})`,
      );
    }
  }
  const auth = `Bearer ${key}`;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(url + path, {
        method,
        headers: {
          authorization: auth,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new KilnError(
        'KILN_ERR_UNREACHABLE',
        `cannot reach the region at ${url} (${cause?.code ?? cause?.message ?? (err as Error).message}): is it running? Set KILN_URL or --url to point elsewhere.`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
        ?.error;
      throw new ApiError(
        res.status,
        e?.code ?? 'KILN_ERR_HTTP',
        e?.message ?? `HTTP ${res.status} from ${url}${path}`,
        e?.details,
      );
    }
    return parsed as T;
  }

  async function* walk<T>(path: string, query: URLSearchParams, max?: number): AsyncGenerator<T> {
    let seen = 0;
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams(query);
      if (cursor) q.set('cursor', cursor);
      if (max !== undefined) q.set('limit', String(Math.min(1000, max - seen)));
      else if (!q.has('limit')) q.set('limit', '1000');
      const page: { items: T[]; next: string | null } = await request('GET', `${path}?${q}`);
      for (const item of page.items) {
        yield item;
        if (max !== undefined && ++seen >= max) return;
      }
      cursor = page.next;
    } while (cursor);
  }

  return { url, request, walk };
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** `key=value` pairs (power parameters); numbers and booleans stay strings unless written as JSON. */
export function keyValues(pairs: string[] | undefined, what: string): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new ValidationError(`${what} must be key=value, got '${p}'`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

export function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text))
    throw new ValidationError(`${what} must be a positive integer, got '${text}'`);
  return Number(text);
}
