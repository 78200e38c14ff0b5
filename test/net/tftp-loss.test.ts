/**
 * Transfers through 2% packet loss. This kernel has no netem, so the test makes a network
 * namespace whose loopback drops 2% of incoming packets at random (iptables statistic match), runs
 * the server (scripts/bench/tftp-serve.ts) and atftp inside it, and removes it all afterwards.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeRoot, type Root, run, sha256, sha256File } from './tftp-helpers.js';

const NS = `kiln-tftp-loss-${process.pid}`;
let root: Root;
let server: ChildProcess | undefined;
let port = 0;

async function sh(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 10_000 });
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

before(async () => {
  root = makeRoot({ 'loss.bin': randomBytes(1_500_000) });
  await sh('ip', ['netns', 'add', NS]);
  await sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  await sh('ip', [
    ...['netns', 'exec', NS, 'iptables', '-A', 'INPUT', '-p', 'udp'],
    ...['-m', 'statistic', '--mode', 'random', '--probability', '0.02', '-j', 'DROP'],
  ]);
  const child = spawn(
    'ip',
    [
      ...['netns', 'exec', NS, process.execPath, '--import', 'tsx', 'scripts/bench/tftp-serve.ts'],
      ...['--root', root.root, '--port', '0', '--timeout-ms', '200', '--retries', '20'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  server = child;
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
});

after(async () => {
  // `ip netns exec` execs node in place, so this PID is the server's.
  if (server?.pid && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    process.kill(server.pid, 'SIGTERM');
    await exited;
  }
  await run('ip', ['netns', 'del', NS]);
  root.cleanup();
});

for (const window of [1, 8]) {
  test(`atftp windowsize ${window} through 2% loss gets the file intact`, async () => {
    const local = join(root.top, `loss-${window}`);
    const r = await run(
      'ip',
      [
        ...['netns', 'exec', NS, 'atftp', '--tftp-timeout', '1'],
        ...['--option', 'blksize 1468', '--option', `windowsize ${window}`, '--option', 'tsize 0'],
        ...['-g', '-r', 'loss.bin', '-l', local, '127.0.0.1', String(port)],
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256File(local), sha256(root.files['loss.bin']!));
  });
}

test('the namespace really drops packets', async () => {
  const r = await run('ip', ['netns', 'exec', NS, 'iptables', '-L', 'INPUT', '-v', '-n', '-x']);
  const m = /^\s*(\d+)\s+\d+\s+DROP/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 0, 'some packets were dropped');
});
