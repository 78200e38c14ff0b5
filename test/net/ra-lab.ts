import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Ipv6RaStats } from '../../src/net/ipv6-ra.js';

/**
 * Two network namespaces joined by a veth pair: the rack side (`ra0`, where the responder runs as a
 * child process) and a client side (`eth0`, where rdisc6 and the test's raw sender run). `close()`
 * kills everything started (by PID), and anything left inside the namespaces, then deletes them.
 */
const ROOT = join(import.meta.dirname, '..', '..');

export function sh(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}) {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 20_000 });
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r;
}

export async function until<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Responder {
  proc: ChildProcess;
  /** Debug log lines (JSON) from the responder. */
  logs: Array<Record<string, unknown>>;
  stats(): Promise<Ipv6RaStats>;
  /** SIGTERM; resolves with the child's last line ({stopped, openSockets}). */
  stop(): Promise<Record<string, unknown>>;
}

export class RaLab {
  readonly tag = `kra${process.pid}`;
  readonly rackNs = `${this.tag}r`;
  readonly clientNs = `${this.tag}c`;
  private readonly procs: ChildProcess[] = [];

  constructor() {
    try {
      sh(['ip', 'netns', 'add', this.rackNs]);
      sh(['ip', 'netns', 'add', this.clientNs]);
      // The client kernel must not solicit on its own: each solicitation in these tests is one the
      // test sent, so counts are exact. It still processes advertisements (accept_ra stays 1).
      sh([
        'ip',
        'netns',
        'exec',
        this.clientNs,
        'sysctl',
        '-qw',
        'net.ipv6.conf.default.router_solicitations=0',
      ]);
      sh(['ip', 'netns', 'exec', this.clientNs, 'sysctl', '-qw', 'net.ipv6.conf.default.accept_ra=1']);
      sh([
        'ip',
        'link',
        'add',
        'ra0',
        'netns',
        this.rackNs,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        this.clientNs,
      ]);
      for (const ns of [this.rackNs, this.clientNs]) sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', this.rackNs, 'link', 'set', 'ra0', 'up']);
      sh(['ip', '-n', this.clientNs, 'link', 'set', 'eth0', 'up']);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The interface's link-local address once DAD has finished (a tentative one cannot send). */
  async linkLocal(ns: string, dev: string): Promise<string> {
    return until(`a usable link-local address on ${dev}`, () => {
      const out = sh(['ip', '-n', ns, '-6', '-o', 'addr', 'show', 'dev', dev, 'scope', 'link']).stdout;
      const m = /inet6 (fe80::[0-9a-f:]+)\/64 scope link(?! tentative)/.exec(out);
      return m && !/tentative/.test(out) ? m[1]! : null;
    });
  }

  mac(ns: string, dev: string): string {
    const out = sh(['ip', '-n', ns, '-o', 'link', 'show', 'dev', dev]).stdout;
    return /link\/ether ([0-9a-f:]{17})/.exec(out)![1]!;
  }

  exec(ns: string, args: string[], timeoutMs = 30_000) {
    return sh(['ip', 'netns', 'exec', ns, ...args], { allowFail: true, timeoutMs });
  }

  /** rdisc6 once: `-1` stops at the first advertisement; `-r 1 -w ms` bounds the wait. */
  rdisc6(waitMs = 3000) {
    return this.exec(this.clientNs, ['rdisc6', '-1', '-r', '1', '-w', String(waitMs), 'eth0']);
  }

  /** Raw ICMPv6 messages (hex) from the client namespace, through the addon's socket. */
  send(hex: string[], opts: { to?: string; hopLimit?: number; ns?: string; ifname?: string } = {}) {
    const r = this.exec(opts.ns ?? this.clientNs, [
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'test/net/fixtures/icmp6-send-child.ts'),
      JSON.stringify({
        ifname: opts.ifname ?? 'eth0',
        to: opts.to ?? 'ff02::2',
        hex,
        ...(opts.hopLimit ? { hopLimit: opts.hopLimit } : {}),
      }),
    ]);
    if (r.status !== 0) throw new Error(`send failed: ${r.stderr}`);
  }

  async startResponder(args: { ifname?: string; maxDelayMs?: number } = {}): Promise<Responder> {
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.rackNs,
        process.execPath,
        '--import',
        'tsx',
        join(ROOT, 'test/net/fixtures/ra-responder-child.ts'),
        JSON.stringify({ ifname: 'ra0', ...args }),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.procs.push(proc);
    const lines: Array<Record<string, unknown>> = [];
    const logs: Array<Record<string, unknown>> = [];
    const stderr: string[] = [];
    createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l)));
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      try {
        logs.push(JSON.parse(l));
      } catch {
        stderr.push(l);
      }
    });
    let exited = false;
    proc.on('exit', () => {
      exited = true;
    });
    const ready = await until(
      'the responder to start',
      () => {
        if (exited) throw new Error(`responder exited: ${JSON.stringify(lines)} ${stderr.join('\n')}`);
        return lines.find((l) => 'ready' in l || 'error' in l);
      },
      20_000,
    );
    if ('error' in ready) throw new Error(`responder failed: ${String(ready.error)}`);
    return {
      proc,
      logs,
      stats: async () => {
        const before = lines.length;
        proc.stdin!.write('stats\n');
        const l = await until('stats', () => lines.slice(before).find((x) => 'stats' in x));
        return l.stats as Ipv6RaStats;
      },
      stop: async () => {
        const before = lines.length;
        proc.kill('SIGTERM');
        await until('the responder to exit', () => exited);
        return lines.slice(before).find((x) => 'stopped' in x) ?? {};
      },
    };
  }

  close(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const ns of [this.clientNs, this.rackNs]) {
      const pids = sh(['ip', 'netns', 'pids', ns], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      sh(['ip', 'netns', 'del', ns], { allowFail: true });
    }
  }
}

/** rdisc6's report of one advertisement, as field → value. */
export function parseRdisc6(out: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z .-]+?)\s*:\s*(.+?)\s*$/.exec(line);
    if (m) fields[m[1]!] = m[2]!;
    const from = /^\s*from (\S+)/.exec(line);
    if (from) fields.from = from[1]!;
  }
  return fields;
}
