#!/usr/bin/env node
// Runs the test suite with node:test over the TypeScript sources (tsx loads them; no build needed).
//   node scripts/run-tests.mjs            every test under test/
//   node scripts/run-tests.mjs --unit     everything but test/e2e
//   node scripts/run-tests.mjs PATH...    only these files or folders
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const roots = args.filter((a) => !a.startsWith('--'));

function collect(path, out) {
  const st = statSync(path);
  if (st.isFile()) {
    if (/\.test\.ts$/.test(path)) out.push(path);
    return out;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    if (unit && join(path, name) === join('test', 'e2e')) continue;
    collect(join(path, name), out);
  }
  return out;
}

const files = [];
for (const r of roots.length ? roots : ['test']) collect(r, files);
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, NODE_ENV: 'test' },
});
process.exit(res.status ?? 1);
