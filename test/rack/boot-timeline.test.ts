import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/lib/logger.js';
import { parseMac } from '../../src/lib/mac.js';
import { BootTimeline } from '../../src/rack/boot-timeline.js';

const a = parseMac('52:54:00:00:00:0a');
const b = parseMac('52:54:00:00:00:0b');

test('held hops are bounded per MAC, expire, and go out once the machine is known', async () => {
  let t = 0;
  const known = new Set<string>();
  const got: Array<{ mac?: string; text: string; at: unknown }> = [];
  const tl = new BootTimeline({
    logger: silentLogger,
    now: () => t,
    maxHeldPerMac: 3,
    holdMs: 1000,
    send: async (e) => {
      if (!known.has(e.mac!)) return { recorded: false };
      got.push({ mac: e.mac, text: e.text, at: e.data?.at });
      return { recorded: true };
    },
  });
  for (let i = 0; i < 5; i++) tl.record({ mac: a, type: 'tftp.file', text: `a${i}` });
  tl.record({ mac: b, type: 'tftp.file', text: 'b-old' });
  await tl.flush();
  t = 900;
  known.add(a);
  tl.machineKnown(a);
  await tl.flush();
  assert.deepEqual(
    got.map((g) => g.text),
    ['a2', 'a3', 'a4'],
  );
  assert.equal(got[0]!.at, new Date(0).toISOString(), 'the hop keeps the time it happened');
  t = 2000;
  known.add(b);
  tl.machineKnown(b);
  await tl.flush();
  assert.equal(got.length, 3, 'expired hops are dropped');
});

test('a hop refused in a race with the machine being created is sent again', async () => {
  const known = new Set<string>();
  const got: string[] = [];
  let first = true;
  const tl = new BootTimeline({
    logger: silentLogger,
    send: async (e) => {
      if (first) {
        first = false;
        // The region created the machine while this hop was in flight.
        known.add(e.mac!);
        tl.machineKnown(a);
        return { recorded: false };
      }
      got.push(e.text);
      return { recorded: known.has(e.mac!) };
    },
  });
  tl.record({ mac: a, type: 'http.script', text: 'x' });
  await tl.flush();
  assert.deepEqual(got, ['x']);
});

test('a failing region never throws at the caller', async () => {
  const tl = new BootTimeline({
    logger: silentLogger,
    send: async () => {
      throw new Error('down');
    },
  });
  tl.record({ mac: a, type: 'x', text: 'y' });
  await tl.flush();
});
