#!/usr/bin/env node
// Builds the N-API addon in src/native/ (sendfile, SO_REUSEPORT sockets, SO_BINDTODEVICE).
// kiln runs without it (stream fallback, one worker), so a failed build warns and exits 0;
// KILN_REQUIRE_NATIVE=1 makes a failure fatal (CI sets it to keep both paths tested).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
if (!existsSync(join(root, 'binding.gyp'))) process.exit(0);

const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  // Production installs omit devDependencies: use the node-gyp that ships inside npm.
  const npmDir = process.env.npm_execpath ? dirname(dirname(process.env.npm_execpath)) : null;
  const bundled = npmDir && join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (bundled && existsSync(bundled)) gyp = bundled;
}
if (!gyp) {
  console.warn('kiln: node-gyp not found; the native addon is not built (kiln falls back to streams).');
  process.exit(process.env.KILN_REQUIRE_NATIVE === '1' ? 1 : 0);
}
// node-gyp downloads Node's headers unless told where they are; offline machines cannot. The headers
// that ship with this very node (distro packages and official tarballs put them in
// <prefix>/include/node) match it exactly, so prefer them when no nodedir was configured.
const args = [gyp, 'rebuild'];
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (res.status !== 0) {
  console.warn('kiln: the native addon failed to build; kiln will run with its pure-Node fallbacks.');
  process.exit(process.env.KILN_REQUIRE_NATIVE === '1' ? 1 : 0);
}
