import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ChildPool, type ChildPoolOptions, restartDelayMs } from '../../src/lib/child-pool.js';
import type { Logger } from '../../src/lib/logger.js';
import { waitFor } from '../region/helpers.js';

/**
 * A tiny real child: reports `ready` (with its argv and start message) unless told to stay silent,
 * dies at once when its mode is `die`, ignores stop requests and SIGTERM when `stubborn`, and
 * otherwise exits 0 on the stop message.
 */
const CHILD = `
process.on('message', (m) => {
  if (m.t === 'start') {
    if (m.mode === 'die') process.exit(3);
    if (m.mode === 'stubborn') process.on('SIGTERM', () => {});
    if (m.mode !== 'silent') process.send({ t: 'ready', argv: process.argv.slice(2), start: m });
  } else if (m.t === 'stop') {
    if (m.mode === 'stubborn') return;
    process.send({ t: 'bye' }, () => process.exit(0));
  }
});
`;

const dir = mkdtempSync(join(tmpdir(), 'kiln-child-pool-'));
const script = join(dir, 'child.mjs');
writeFileSync(script, CHILD);
after(() => rmSync(dir, { recursive: true, force: true }));

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function capture(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') lines.push({ level, obj: {}, msg: obj });
      else lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => logger,
  };
  return { lines, logger };
}

/** Every pid a test's pool ever forked, killed at the end whatever happened. */
function tracked(t: { after: (fn: () => unknown) => void }, pool: () => ChildPool | undefined) {
  const pids = new Set<number>();
  const timer = setInterval(() => {
    for (const pid of pool()?.pids().values() ?? []) pids.add(pid);
  }, 10);
  t.after(async () => {
    clearInterval(timer);
    await pool()?.stop();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  return pids;
}

type Hooks = Partial<ChildPoolOptions> & { modes?: Record<number, string> };

function newPool(
  logger: Logger,
  hooks: Hooks = {},
): {
  pool: ChildPool;
  messages: Array<{ slot: number; m: Record<string, unknown> }>;
} {
  const messages: Array<{ slot: number; m: Record<string, unknown> }> = [];
  const modes = hooks.modes ?? {};
  const pool: ChildPool = new ChildPool({
    name: 'test child',
    logger,
    script,
    args: ['--role', 'test'],
    execArgv: [],
    startMessage: (slot) => ({ t: 'start', index: slot.index, mode: modes[slot.index] ?? 'ok' }),
    stopMessage: { t: 'stop', mode: 'ok' },
    onMessage(slot, _child, m) {
      messages.push({ slot: slot.index, m: m as Record<string, unknown> });
      if ((m as { t: string }).t === 'ready') pool.markReady(slot);
    },
    ...hooks,
  });
  return { pool, messages };
}

test('children get their slot number and start message, report ready, and drain on stop', async (t) => {
  const { logger, lines } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  const made = newPool(logger);
  pool = made.pool;
  const exits: number[] = [];
  const ok = await Promise.all([pool.start(1), pool.start(2)]);
  assert.deepEqual(ok, [true, true]);
  const pids = pool.pids();
  assert.deepEqual([...pids.keys()].sort(), [1, 2]);
  assert.notEqual(pids.get(1), pids.get(2));
  assert.deepEqual(
    pool.slots.map((s) => [s.index, s.ready, s.restarts]),
    [
      [1, true, 0],
      [2, true, 0],
    ],
  );
  assert.equal(pool.live().length, 2);
  for (const slot of [1, 2]) {
    const ready = made.messages.find((x) => x.slot === slot && x.m.t === 'ready')!;
    assert.deepEqual(ready.m.argv, ['--role', 'test', String(slot)]);
    assert.deepEqual(ready.m.start, { t: 'start', index: slot, mode: 'ok' });
  }
  for (const c of pool.live()) c.once('exit', (code: number) => exits.push(code));
  await pool.stop();
  assert.deepEqual(exits, [0, 0], 'both exited on the stop message, not killed');
  assert.equal(made.messages.filter((x) => x.m.t === 'bye').length, 2);
  assert.equal(pool.pids().size, 0);
  assert.ok(!lines.some((l) => l.level === 'error'), 'nothing went wrong');
});

test('a child that dies is forked again into its slot, with a backoff that grows while it keeps dying', async (t) => {
  const { logger, lines } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  const asked: number[] = [];
  const exited: number[] = [];
  const made = newPool(logger, {
    restartDelayMs: (crashes) => {
      asked.push(crashes);
      return 10;
    },
    onExit: (slot, child: ChildProcess) => exited.push(slot.index, child.exitCode ?? -1),
  });
  pool = made.pool;
  assert.equal(await pool.start(1), true);
  const first = pool.pids().get(1)!;
  process.kill(first, 'SIGKILL');
  const second = await waitFor('a new child in slot 1', () => {
    const pid = pool!.pids().get(1);
    return pid !== undefined && pid !== first && pool!.slots[0]!.ready ? pid : null;
  });
  assert.equal(pool.slots[0]!.restarts, 1);
  assert.deepEqual(asked, [1]);
  assert.deepEqual(exited, [1, -1], 'onExit saw the killed child (no exit code: a signal)');
  const died = lines.find((l) => l.msg === 'test child died; restarting')!;
  assert.equal(died.level, 'error');
  assert.deepEqual(
    { ...died.obj },
    { worker: 1, pid: first, code: null, signal: 'SIGKILL', restart_in_ms: 10 },
  );
  // The restarted child got its start message again.
  assert.equal(made.messages.filter((x) => x.m.t === 'ready').length, 2);
  process.kill(second, 'SIGKILL');
  await waitFor('a third child', () => pool!.slots[0]!.restarts === 2 && pool!.slots[0]!.ready);
  assert.deepEqual(asked, [1, 2], 'a second quick death counts as two in a row');
});

test('a long-lived child that dies starts the backoff over', async (t) => {
  const { logger } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  const asked: number[] = [];
  pool = newPool(logger, {
    // Any run counts as stable here.
    stableMs: -1,
    restartDelayMs: (crashes) => {
      asked.push(crashes);
      return 10;
    },
  }).pool;
  assert.equal(await pool.start(1), true);
  for (let i = 1; i <= 2; i++) {
    process.kill(pool.pids().get(1)!, 'SIGKILL');
    await waitFor(`restart ${i}`, () => pool!.slots[0]!.restarts === i && pool!.slots[0]!.ready);
  }
  assert.deepEqual(asked, [1, 1]);
});

test('start is false for a child that dies before ready; it keeps being restarted until stop', async (t) => {
  const { logger, lines } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  const asked: number[] = [];
  pool = newPool(logger, {
    modes: { 1: 'die' },
    restartDelayMs: (crashes) => {
      asked.push(crashes);
      return 10;
    },
  }).pool;
  assert.equal(await pool.start(1), false);
  await waitFor('three restarts', () => pool!.slots[0]!.restarts >= 3);
  assert.deepEqual(asked.slice(0, 3), [1, 2, 3]);
  await pool.stop();
  const after = pool.slots[0]!.restarts;
  const deaths = lines.filter((l) => l.msg === 'test child died; restarting').length;
  // A restart still scheduled at stop was cancelled: nothing is forked in 10 times the delay.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pool.slots[0]!.restarts, after);
  assert.equal(lines.filter((l) => l.msg === 'test child died; restarting').length, deaths);
  assert.equal(pool.pids().size, 0);
});

test('a child that never reports does not hold start past readyTimeoutMs, and keeps its slot', async (t) => {
  const { logger, lines } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  pool = newPool(logger, { modes: { 1: 'silent' }, readyTimeoutMs: 200 }).pool;
  assert.equal(await pool.start(1), false);
  const line = lines.find((l) => l.msg === 'test child not ready in time; going on without it')!;
  assert.equal(line.level, 'error');
  assert.deepEqual(line.obj, { worker: 1, pid: pool.pids().get(1) });
  assert.equal(pool.slots[0]!.ready, false);
  assert.equal(pool.live().length, 1);
});

test('stop kills a child that ignores the stop message once stopTimeoutMs is up', async (t) => {
  const { logger } = capture();
  let pool: ChildPool | undefined;
  tracked(t, () => pool);
  pool = newPool(logger, {
    modes: { 1: 'stubborn' },
    stopMessage: { t: 'stop', mode: 'stubborn' },
    stopTimeoutMs: 300,
  }).pool;
  assert.equal(await pool.start(1), true);
  const child = pool.live()[0]!;
  const exit = new Promise<string | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  await pool.stop();
  assert.equal(await exit, 'SIGKILL');
  assert.equal(pool.slots[0]!.restarts, 0, 'no restart after stop');
});

test('the default backoff: 100 ms doubling per quick crash, at most 10 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 8, 20].map(restartDelayMs), [100, 100, 200, 400, 800, 10_000, 10_000]);
});
