#!/usr/bin/env node
// npm run images:build — builds kiln's default boot image (images/build.mjs) and imports it into
// the local region store as boot resource kiln/ephemeral, amd64/generic, kind ephemeral.
// data_dir: $KILN_DATA_DIR, else ./.kiln (as under `npm start`). Extra arguments go to the build
// (--force, --out DIR). The import acts on data_dir directly (`kiln images import --local`), so no
// region needs to be running; a running one sees the new resource at once (same database), and
// racks pick it up at their next image sync.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 && args[outIdx + 1] ? resolve(args[outIdx + 1]) : join(root, 'images', 'out');

const build = spawnSync(process.execPath, [join(root, 'images', 'build.mjs'), ...args], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const env = { ...process.env, KILN_DATA_DIR: process.env.KILN_DATA_DIR || './.kiln' };
const imp = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    join(root, 'src', 'main.ts'),
    'images',
    'import',
    '--local',
    '--name',
    'kiln/ephemeral',
    '--arch',
    'amd64/generic',
    '--kind',
    'ephemeral',
    '--kernel',
    join(out, 'vmlinuz'),
    '--initrd',
    join(out, 'initrd.img'),
  ],
  { stdio: 'inherit', env },
);
process.exit(imp.status ?? 1);
