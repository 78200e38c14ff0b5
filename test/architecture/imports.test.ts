/**
 * The direction of imports (DESIGN.md): lib and config at the bottom; protocols ← net ← rack;
 * native ← net; rpc ← region, rack; storage ← workflows ← region; power ← rack; main.ts on top.
 * region and rack meet only through rpc. This test reads every import in src/ and fails on any
 * edge the layering does not allow, naming the file and the import.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../../src');

/** What each top-level folder may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  lib: [],
  config: ['lib'],
  protocols: ['lib'],
  native: ['lib'],
  net: ['lib', 'config', 'protocols', 'native'],
  rpc: ['lib', 'config', 'protocols'],
  storage: ['lib', 'config', 'protocols'],
  power: ['lib', 'config', 'protocols', 'net', 'native'],
  workflows: ['lib', 'config', 'storage', 'rpc', 'power'],
  region: ['lib', 'config', 'protocols', 'native', 'net', 'rpc', 'storage', 'workflows'],
  rack: ['lib', 'config', 'protocols', 'native', 'net', 'rpc', 'storage', 'power'],
  cli: ['lib', 'config', 'protocols', 'storage', 'rpc', 'region'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.ts$/.test(name) ? [p] : [];
  });
}

function layerOf(path: string): string {
  const rel = relative(SRC, path);
  return rel.includes('/') ? rel.split('/')[0]! : '(top)';
}

test('imports point down only; region and rack meet only through rpc', () => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (from === '(top)') continue; // main.ts sees everything
    const text = readFileSync(file, 'utf8');
    const specs = [
      ...text.matchAll(
        /(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g,
      ),
    ];
    for (const m of specs) {
      const spec = m[1] ?? m[2]!;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      if (to === from) continue;
      const allowed = ALLOWED[from];
      if (!allowed) {
        violations.push(`${relative(SRC, file)}: folder '${from}' is not in the layering table`);
        break;
      }
      if (!allowed.includes(to)) violations.push(`${relative(SRC, file)} imports ${spec} (${from} → ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});
