import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createMachine } from '../../src/storage/machines.js';
import { startRegion, type TestRegion } from '../region/http/helpers.js';

const MAIN = join(import.meta.dirname, '../../src/main.ts');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process (async: the region it talks to lives in this process). */
function kiln(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end();
  });
}

describe('kiln CLI against a live region', () => {
  let r: TestRegion;
  let env: Record<string, string>;
  before(async () => {
    r = await startRegion();
    env = { KILN_URL: r.base, KILN_API_KEY: r.key, KILN_DATA_DIR: r.dataDir, KILN_LOG_LEVEL: 'warn' };
    createMachine(r.db, { hostname: 'alpha', boot_mac: '52:54:00:00:0c:01', tags: ['cli'] });
  });
  after(() => r.close());

  test('machines add, list --json, show, update, delete', async () => {
    const add = await kiln(
      [
        'machines',
        'add',
        '--hostname',
        'beta',
        '--mac',
        '52:54:00:00:0c:02',
        '--power-type',
        'ipmi',
        '--power-param',
        'power_pass=pw',
        '--tag',
        'cli',
        '--json',
      ],
      env,
    );
    assert.equal(add.code, 0, add.stderr);
    const created = JSON.parse(add.stdout);
    assert.equal(created.hostname, 'beta');
    assert.equal(created.power_parameters.power_pass, '********');

    const list = await kiln(['machines', 'list', '--json', '--tag', 'cli'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout)
        .map((m: { hostname: string }) => m.hostname)
        .sort(),
      ['alpha', 'beta'],
    );

    const table = await kiln(['machines', 'list'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout.split('\n')[0]!, /^SYSTEM_ID\s+HOSTNAME\s+STATUS/);
    assert.match(table.stdout, /beta\s+NEW\s+amd64\/generic\s+52:54:00:00:0c:02/);

    const show = await kiln(['machines', 'show', 'beta'], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`system_id:\\s+${created.system_id}`));

    const upd = await kiln(['machines', 'update', 'beta', '--status', 'READY', '--json'], env);
    assert.equal(upd.code, 0, upd.stderr);
    assert.equal(JSON.parse(upd.stdout).status, 'READY');

    const del = await kiln(['machines', 'delete', created.system_id], env);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /deleted/);
  });

  test('API errors are one clear line and exit 1', async () => {
    const dup = await kiln(['machines', 'add', '--mac', '52:54:00:00:0c:01'], env);
    assert.equal(dup.code, 1);
    assert.equal(dup.stderr.trim().split('\n').length, 1);
    assert.match(dup.stderr, /^kiln machines: MAC 52:54:00:00:0c:01 already belongs to machine/);
    const missing = await kiln(['machines', 'show', 'nosuch'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no machine with system_id or hostname 'nosuch'/);
    const badKey = await kiln(['machines', 'list'], { ...env, KILN_API_KEY: 'kiln_wrong' });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /^kiln machines: invalid API key/);
    const unknownOpt = await kiln(['machines', 'list', '--colour', 'red'], env);
    assert.equal(unknownOpt.code, 1);
    assert.match(unknownOpt.stderr, /unknown option --colour/);
  });

  test('an unreachable region says where it looked', async () => {
    const res = await kiln(['machines', 'list'], { ...env, KILN_URL: 'http://127.0.0.1:9' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /cannot reach the region at http:\/\/127\.0\.0\.1:9/);
  });

  test('subnets and events', async () => {
    const add = await kiln(
      [
        'subnets',
        'add',
        '10.9.0.0/24',
        '--gateway',
        '10.9.0.1',
        '--range',
        '10.9.0.100-10.9.0.150',
        '--json',
      ],
      env,
    );
    assert.equal(add.code, 0, add.stderr);
    const s = JSON.parse(add.stdout);
    const list = await kiln(['subnets', 'list'], env);
    assert.match(
      list.stdout,
      /10\.9\.0\.0\/24\s+10\.9\.0\.0\/24\s+10\.9\.0\.1\s+-\s+10\.9\.0\.100-10\.9\.0\.150\s+no/,
    );
    const bad = await kiln(['subnets', 'update', String(s.id), '--range', '10.9.0.100-10.10.0.1'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /dynamic_range\.end/);
    const ev = await kiln(['events', 'alpha', '--json'], env);
    assert.equal(ev.code, 0, ev.stderr);
    assert.deepEqual(JSON.parse(ev.stdout), []);
  });

  test('--help for each command', async () => {
    for (const cmd of ['machines', 'subnets', 'events', 'apikey']) {
      const res = await kiln([cmd, '--help'], env);
      assert.equal(res.code, 0, `${cmd}: ${res.stderr}`);
      assert.match(res.stdout, new RegExp(`Usage: kiln ${cmd}`));
    }
  });
});

describe('kiln apikey on the local data_dir', () => {
  let r: TestRegion;
  before(async () => {
    r = await startRegion();
  });
  after(() => r.close());

  test('create --save, then the CLI finds the key file; revoke → 403', async () => {
    const env = { KILN_DATA_DIR: r.dataDir, KILN_URL: r.base, KILN_LOG_LEVEL: 'warn' };
    const created = await kiln(['apikey', 'create', '--name', 'ops', '--save', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const k = JSON.parse(created.stdout);
    assert.match(k.key, /^kiln_/);
    assert.equal(statSync(join(r.dataDir, 'cli-api-key')).mode & 0o777, 0o600);

    const list = await kiln(['machines', 'list', '--json'], env);
    assert.equal(list.code, 0, list.stderr);

    const keys = await kiln(['apikey', 'list'], env);
    assert.match(keys.stdout, /ops\s+kiln_/);
    assert.ok(!keys.stdout.includes(k.key));

    const rev = await kiln(['apikey', 'revoke', 'ops'], env);
    assert.equal(rev.code, 0, rev.stderr);
    const after = await kiln(['machines', 'list'], env);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /revoked/);
  });
});
