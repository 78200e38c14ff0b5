import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { DhcpLab, labConfig } from './dhcp-lab.js';

/**
 * rack.dhcp.ipv6_ra wiring: DhcpService answers router solicitations on exactly the interfaces it
 * serves DHCP on, stops when an interface stops being served, and says once why it cannot when the
 * addon is missing. The solicitor is rdisc6 in a client namespace on the lab bridge.
 */
const CHILD = join(import.meta.dirname, 'dhcp-ra-child.ts');

async function until<T>(
  what: string,
  fn: () => T | undefined | null | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  logs: Array<Record<string, unknown>>;
  next(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  apply(config: unknown): Promise<Record<string, unknown>>;
  stop(): Promise<Record<string, unknown>>;
}

function start(lab: DhcpLab, args: { ipv6Ra: boolean; config: unknown; tag: string }, env = {}): Child {
  const proc = lab.spawn(
    lab.serverNs,
    [
      process.execPath,
      '--import',
      'tsx',
      CHILD,
      JSON.stringify({ dataDir: join(lab.dir, args.tag), config: args.config, ipv6Ra: args.ipv6Ra }),
    ],
    env,
  );
  const lines: Array<Record<string, unknown>> = [];
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l)));
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    try {
      logs.push(JSON.parse(l));
    } catch {
      raw.push(l);
    }
  });
  const next = (pred: (l: Record<string, unknown>) => boolean, from = 0) =>
    until(`the DHCP child (${raw.slice(-5).join(' ')})`, () => {
      if (proc.exitCode !== null && !lines.slice(from).some(pred)) {
        throw new Error(`DHCP child exited: ${raw.slice(-20).join('\n')}`);
      }
      return lines.slice(from).find(pred);
    });
  return {
    proc,
    lines,
    logs,
    next,
    apply: (config) => {
      const from = lines.length;
      proc.stdin!.write(`${JSON.stringify(config)}\n`);
      return next((l) => 'applied' in l || 'error' in l, from);
    },
    stop: () => {
      const from = lines.length;
      proc.kill('SIGTERM');
      return next((l) => 'stopped' in l, from);
    },
  };
}

describe('DhcpService: rack.dhcp.ipv6_ra', () => {
  let lab: DhcpLab;
  let client: string;

  const rdisc6 = (waitMs = 3000) =>
    lab.exec(client, ['rdisc6', '-1', '-r', '1', '-w', String(waitMs), 'eth0'], { timeoutMs: 20_000 });

  before(async () => {
    lab = new DhcpLab();
    client = lab.addClient();
    // rdisc6 needs usable (non-tentative) link-local addresses on both ends.
    for (const [ns, dev] of [
      [client, 'eth0'],
      [lab.serverNs, 'kbr'],
    ] as const) {
      await until(`link-local on ${dev}`, () => {
        const out = lab.exec(ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', dev, 'scope', 'link']).stdout;
        return /inet6 fe80/.test(out) && !/tentative/.test(out);
      });
    }
  });
  after(() => lab?.close());

  test('a served interface answers solicitations; an unserved one stops answering', async () => {
    const c = start(lab, { ipv6Ra: true, config: labConfig(), tag: 'a' });
    const ready = await c.next((l) => 'ready' in l);
    assert.deepEqual(ready.ra, ['kbr']);
    const r = rdisc6();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Router lifetime\s*:\s*0 \(0x00000000\) seconds/);
    assert.doesNotMatch(r.stdout, /^ *Prefix\b/m);

    // The region takes the subnet away: no DHCP there, so no advertisements either.
    const applied = await c.apply({ subnets: [] });
    assert.deepEqual(applied.ra, []);
    assert.notEqual(rdisc6(500).status, 0);

    // And back.
    assert.deepEqual((await c.apply(labConfig())).ra, ['kbr']);
    assert.equal(rdisc6().status, 0);
    const stopped = await c.stop();
    assert.deepEqual(stopped.ra, []);
    assert.equal(stopped.openSockets, 0);
  });

  test('ipv6Ra off: DHCP serves, nothing answers solicitations', async () => {
    const c = start(lab, { ipv6Ra: false, config: labConfig(), tag: 'b' });
    const ready = await c.next((l) => 'ready' in l);
    assert.deepEqual(ready.ra, []);
    assert.deepEqual(
      (ready.ports as Array<{ ifname: string }>).map((p) => p.ifname),
      ['kbr'],
    );
    assert.notEqual(rdisc6(500).status, 0);
    await c.stop();
  });

  test('without the addon: DHCP still serves, and the log says once why RAs are off', async () => {
    const c = start(lab, { ipv6Ra: true, config: labConfig(), tag: 'c' }, { KILN_NO_NATIVE: '1' });
    const ready = await c.next((l) => 'ready' in l);
    assert.deepEqual(ready.ra, []);
    assert.equal((ready.ports as unknown[]).length > 0, true);
    await c.apply({ subnets: [] });
    await c.apply(labConfig());
    const off = c.logs.filter((l) => /IPv6 router advertisements are off/.test(String(l.msg)));
    assert.equal(off.length, 1);
    assert.match(String(off[0]!.msg), /native addon is unavailable/);
    assert.notEqual(rdisc6(500).status, 0);
    await c.stop();
  });
});
