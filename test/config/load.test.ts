import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configKeys, envNameOf, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/lib/errors.js';

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'));
  const f = join(dir, 'kiln.yaml');
  writeFileSync(f, text);
  return f;
}

test('defaults match the documented ports', () => {
  const { config } = loadConfig({ env: {} });
  assert.equal(config.region.http.port, 5240);
  assert.equal(config.region.rpc.port, 5250);
  assert.equal(config.rack.http.port, 5248);
  assert.equal(config.rack.tftp.port, 69);
  assert.equal(config.rack.dhcp.port, 67);
  assert.equal(config.rack.dhcp.proxy_port, 4011);
});

test('env names follow KILN_ + upper-cased path', () => {
  assert.equal(envNameOf('rack.tftp.port'), 'KILN_RACK_TFTP_PORT');
  assert.equal(envNameOf('data_dir'), 'KILN_DATA_DIR');
  const names = configKeys().map(([k]) => envNameOf(k));
  assert.equal(new Set(names).size, names.length, 'two keys map to the same variable');
});

test('file, then env, then overrides', () => {
  const file = yamlFile(
    'data_dir: /srv/kiln\nrack:\n  tftp:\n    port: 6969\n  region_urls: [http://a:5240]\n',
  );
  const { config, warnings } = loadConfig({
    file,
    env: {
      KILN_RACK_TFTP_PORT: '7000',
      KILN_RACK_REGION_URLS: 'http://x:1, http://y:2',
      KILN_NATIVE_ENABLED: 'false',
    },
  });
  assert.equal(config.data_dir, '/srv/kiln');
  assert.equal(config.rack.tftp.port, 7000);
  assert.deepEqual(config.rack.region_urls, ['http://x:1', 'http://y:2']);
  assert.equal(config.native.enabled, false);
  assert.deepEqual(warnings, []);
});

test('unknown file key stops start-up naming the key', () => {
  const file = yamlFile('rack:\n  tftp:\n    prot: 69\n');
  assert.throws(
    () => loadConfig({ file, env: {} }),
    (err: unknown) =>
      err instanceof ConfigError && err.key === 'rack.tftp.prot' && /known keys/.test(err.message),
  );
});

test('bad value names the key and what is allowed', () => {
  const file = yamlFile('region:\n  http:\n    port: 70000\n');
  assert.throws(
    () => loadConfig({ file, env: {} }),
    (err: unknown) =>
      err instanceof ConfigError && /region\.http\.port/.test(err.message) && /1 to 65535/.test(err.message),
  );
  assert.throws(() => loadConfig({ env: { KILN_LOG_LEVEL: 'loud' } }), /log\.level.*one of/);
  assert.throws(() => loadConfig({ env: { KILN_RACK_WORKERS: '2x' } }), /rack\.workers/);
});

test('unknown KILN_ variable is a warning, CLI variables are not', () => {
  const { warnings } = loadConfig({
    env: { KILN_RACK_TFPT_PORT: '1', KILN_URL: 'http://x', KILN_API_KEY: 'k' },
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /KILN_RACK_TFPT_PORT/);
});

test('invalid YAML and unreadable files are config errors', () => {
  assert.throws(() => loadConfig({ file: yamlFile('a: [\n'), env: {} }), /not valid YAML/);
  assert.throws(() => loadConfig({ file: '/nonexistent/kiln.yaml', env: {} }), /cannot read/);
  assert.throws(() => loadConfig({ file: yamlFile('- 1\n- 2\n'), env: {} }), /mapping/);
});

test('the packaged example config loads', () => {
  const file = new URL('../../packaging/etc/kiln.yaml', import.meta.url).pathname;
  const { config } = loadConfig({ file, env: {} });
  assert.equal(config.data_dir, '/var/lib/kiln');
});

test('a relative data_dir is made absolute once, against the working directory', () => {
  const { config } = loadConfig({ env: { KILN_DATA_DIR: './.kiln' } });
  assert.equal(config.data_dir, join(process.cwd(), '.kiln'));
});
