/**
 * The building blocks of the config schema: each leaf knows its default, how to parse a value from
 * YAML or from an environment string, and how to describe what it allows (for error messages and
 * the README's reference). The typed Config object is inferred from the tree of leaves.
 */
export interface Leaf<T> {
  readonly kind: 'leaf';
  readonly default: T;
  readonly doc: string;
  /** A phrase naming what is allowed: "a port number 1..65535". */
  readonly allowed: string;
  /** Parse a YAML value (already typed) or an env string; throw a plain message on failure. */
  parse(raw: unknown, fromEnv: boolean): T;
}

export type Spec = { readonly [key: string]: Leaf<unknown> | Spec };

export type Infer<S> = S extends Leaf<infer T> ? T : { readonly [K in keyof S]: Infer<S[K]> };

export function isLeaf(x: unknown): x is Leaf<unknown> {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'leaf';
}

class Invalid extends Error {}

export { Invalid as InvalidValue };

function leaf<T>(
  def: T,
  doc: string,
  allowed: string,
  parse: (raw: unknown, fromEnv: boolean) => T,
): Leaf<T> {
  return { kind: 'leaf', default: def, doc, allowed, parse };
}

export function str(def: string, doc: string): Leaf<string> {
  return leaf(def, doc, 'a string', (raw) => {
    if (typeof raw !== 'string') throw new Invalid();
    return raw;
  });
}

export function bool(def: boolean, doc: string): Leaf<boolean> {
  return leaf(def, doc, 'true or false', (raw, fromEnv) => {
    if (typeof raw === 'boolean') return raw;
    if (fromEnv && typeof raw === 'string') {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
    }
    throw new Invalid();
  });
}

export function int(def: number, doc: string, min: number, max: number): Leaf<number> {
  return leaf(def, doc, `a whole number from ${min} to ${max}`, (raw, fromEnv) => {
    const v = fromEnv && typeof raw === 'string' && /^-?[0-9]+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Invalid();
    return v;
  });
}

export function port(def: number, doc: string): Leaf<number> {
  const base = int(def, doc, 1, 65535);
  return { ...base, allowed: 'a port number from 1 to 65535' };
}

export function oneOf<const T extends string>(values: readonly T[], def: T, doc: string): Leaf<T> {
  return leaf(def, doc, `one of ${values.join(', ')}`, (raw) => {
    if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw)) throw new Invalid();
    return raw as T;
  });
}

/** A list of strings: a YAML sequence, or comma-separated in the environment. */
export function list(def: string[], doc: string): Leaf<string[]> {
  return leaf(def, doc, 'a list of strings (comma-separated in the environment)', (raw, fromEnv) => {
    if (fromEnv && typeof raw === 'string') {
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    }
    if (!Array.isArray(raw) || !raw.every((s) => typeof s === 'string')) throw new Invalid();
    return [...raw];
  });
}
