import assert from 'node:assert/strict';
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { ChildPool } from '../../src/lib/child-pool.js';
import { silentLogger } from '../../src/lib/logger.js';
import { waitFor } from '../region/helpers.js';

const LIB = resolve(import.meta.dirname, '../../src/lib/pool-child.ts');

/**
 * A worker written with the helpers: ignores messages that are not its start, reports ready, and
 * on a stop signal tells the parent why it stopped (if the parent is still there) and exits 0.
 * Exit 2 when run by hand, 4 when the parent leaves before the start.
 */
const WORKER = `
import { firstParentMessage, forkedByParent, onStopSignals } from ${JSON.stringify(LIB)};
if (!forkedByParent('__test-worker', 'test')) process.exit(2);
let start;
try {
  start = await firstParentMessage((m) => (m && m.t === 'start' ? m : null), 'parent left early');
} catch (err) {
  process.stderr.write(err.message + '\\n');
  process.exit(4);
}
process.send({ t: 'ready', index: start.index });
onStopSignals(() => {
  if (process.connected) process.send({ t: 'stopping' }, () => process.exit(0));
  else process.exit(0);
});
`;

const dir = mkdtempSync(join(tmpdir(), 'kiln-pool-child-'));
const script = join(dir, 'worker.mjs');
writeFileSync(script, WORKER);
after(() => rmSync(dir, { recursive: true, force: true }));

function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  return new Promise((r) => child.once('exit', (code) => r({ code, stderr })));
}

function killOnEnd(t: { after: (fn: () => unknown) => void }, child: ChildProcess): void {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

test('run by hand (no IPC channel), a worker says who starts it and exits 2', async (t) => {
  const child = spawn(process.execPath, [...process.execArgv, script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  killOnEnd(t, child);
  const { code, stderr } = await exited(child);
  assert.equal(code, 2);
  assert.equal(stderr, 'kiln __test-worker is started by `kiln test`, not by hand\n');
});

test('a parent that leaves before the start message makes the wait fail with the given reason', async (t) => {
  const child = fork(script, [], { execArgv: process.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  killOnEnd(t, child);
  const done = exited(child);
  // Other traffic before the start is left alone; then the parent goes.
  child.send({ t: 'metrics-request' });
  child.disconnect();
  const { code, stderr } = await done;
  assert.equal(code, 4);
  assert.equal(stderr, 'parent left early\n');
});

test('under a ChildPool: the start message is picked; SIGTERM and the parent going away each make it drain', async (t) => {
  const seen: Array<{ slot: number; m: { t: string } }> = [];
  const pool: ChildPool = new ChildPool({
    name: 'test worker',
    logger: silentLogger,
    script,
    args: [],
    execArgv: process.execArgv,
    startMessage: (slot) => ({ t: 'start', index: slot.index }),
    // The helpers' stop signals include the parent going away: disconnecting is this pool's stop.
    stopMessage: { t: 'unused' },
    onMessage(slot, _child, m) {
      seen.push({ slot: slot.index, m: m as { t: string } });
      if ((m as { t: string }).t === 'ready') pool.markReady(slot);
    },
    restartDelayMs: () => 10,
  });
  t.after(async () => {
    await pool.stop();
    for (const pid of pool.pids().values()) process.kill(pid, 'SIGKILL');
  });
  assert.equal(await pool.start(1), true);
  const first = pool.live()[0]!;
  const code = new Promise<number | null>((r) => first.once('exit', (c) => r(c)));
  first.kill('SIGTERM');
  assert.equal(await code, 0);
  assert.ok(
    seen.some((x) => x.m.t === 'stopping'),
    'SIGTERM reached onStopSignals',
  );
  await waitFor('the restarted worker', () => pool.slots[0]!.restarts === 1 && pool.slots[0]!.ready);
  const second = pool.live()[0]!;
  const gone = new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
  second.disconnect();
  assert.equal(await gone, 0, 'the parent going away is a stop too');
});
