import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * A throw-away DHCP network for the tests: a server namespace holding a bridge (10.77.0.1/24), and
 * client namespaces each wired to the bridge by a veth pair. The DHCP service runs in the server
 * namespace as a child process; clients are the real udhcpc and dhclient. `close()` kills what was
 * started (by PID) and deletes the namespaces (by name), also after a failed test.
 */
export const SERVER_IP = '10.77.0.1';
const ROOT = join(import.meta.dirname, '..', '..');

function sh(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 20_000 });
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout;
}

export interface ServerHandle {
  proc: ChildProcess;
  lines: unknown[];
  stderr: string[];
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  apply(config: unknown): Promise<void>;
  stop(): Promise<void>;
}

export class DhcpLab {
  readonly tag = `kd${process.pid}`;
  readonly serverNs = `${this.tag}s`;
  readonly dir = mkdtempSync(join(tmpdir(), 'kiln-dhcp-'));
  private readonly clientNs: string[] = [];
  private readonly procs: ChildProcess[] = [];

  constructor() {
    sh(['ip', 'netns', 'add', this.serverNs]);
    sh(['ip', '-n', this.serverNs, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', this.serverNs, 'link', 'add', 'kbr', 'type', 'bridge']);
    sh(['ip', '-n', this.serverNs, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'kbr']);
    sh(['ip', '-n', this.serverNs, 'link', 'set', 'kbr', 'up']);
    const script = join(this.dir, 'udhcpc.sh');
    // udhcpc's hook: record what the server sent, and configure the address so renewals unicast.
    writeFileSync(
      script,
      '#!/bin/sh\nenv | sort > "$KILN_OUT.$1"\n' +
        'if [ "$1" = bound ]; then ip addr add "$ip/$mask" dev "$interface"; fi\n' +
        'if [ "$1" = deconfig ]; then ip addr flush dev "$interface"; fi\nexit 0\n',
    );
    chmodSync(script, 0o755);
  }

  get udhcpcScript(): string {
    return join(this.dir, 'udhcpc.sh');
  }

  /** A client namespace with one interface `eth0` on the bridge; returns the namespace name. */
  addClient(mac?: string): string {
    const n = this.clientNs.length;
    const ns = `${this.tag}c${n}`;
    sh(['ip', 'netns', 'add', ns]);
    this.clientNs.push(ns);
    sh([
      'ip',
      'link',
      'add',
      `kbp${n}`,
      'netns',
      this.serverNs,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    ]);
    sh(['ip', '-n', this.serverNs, 'link', 'set', `kbp${n}`, 'master', 'kbr', 'up']);
    if (mac) sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'address', mac]);
    sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Run a command in a namespace to completion. */
  exec(ns: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    return spawnSync('ip', ['netns', 'exec', ns, ...args], {
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 30_000,
      env: { ...process.env, ...opts.env },
    });
  }

  /** Start a long-running command in a namespace; killed by PID in close(). */
  spawn(ns: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.procs.push(p);
    return p;
  }

  /** udhcpc once (-q): returns the variables its hook saw on `bound`, or null if it got no lease. */
  udhcpc(ns: string, extra: string[] = [], tag = 'u'): Record<string, string> | null {
    const out = join(this.dir, `${ns}-${tag}`);
    const r = this.exec(
      ns,
      [
        'busybox',
        'udhcpc',
        '-i',
        'eth0',
        '-f',
        '-q',
        '-n',
        '-t',
        '4',
        '-T',
        '1',
        '-s',
        this.udhcpcScript,
        ...extra,
      ],
      { env: { KILN_OUT: out } },
    );
    try {
      return parseEnv(readFileSync(`${out}.bound`, 'utf8'));
    } catch {
      throw new Error(`udhcpc got no lease (exit ${r.status}): ${r.stderr.slice(-800)}`);
    }
  }

  /** Send raw datagrams from a namespace and collect the answers (see dhcp-raw-client.ts). */
  raw(
    ns: string,
    spec: {
      bind: { address: string; port: number };
      sends: Array<{ hex: string; to: string; port: number }>;
      waitMs?: number;
      expect?: number;
    },
  ): Array<{ hex: string; from: string }> {
    const r = this.exec(ns, [
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'test/rack/dhcp-raw-client.ts'),
      JSON.stringify({ waitMs: 3000, expect: 1, ...spec }),
    ]);
    if (r.status !== 0) throw new Error(`raw client failed: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  }

  startServer(opts: { config: unknown; dataDir?: string; probeTimeoutMs?: number }): ServerHandle {
    const arg = JSON.stringify({
      dataDir: opts.dataDir ?? join(this.dir, 'data'),
      config: opts.config,
      probeTimeoutMs: opts.probeTimeoutMs ?? 0,
    });
    const proc = this.spawn(this.serverNs, [
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'test/rack/dhcp-child.ts'),
      arg,
    ]);
    const lines: Record<string, unknown>[] = [];
    const stderr: string[] = [];
    const waiters = new Set<() => void>();
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l));
      } catch {
        stderr.push(l);
      }
      for (const w of waiters) w();
    });
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > 500) stderr.shift();
    });
    let exited = false;
    proc.on('exit', () => {
      exited = true;
      for (const w of waiters) w();
    });
    const waitFor = (pred: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit) {
            done();
            resolve(hit);
          } else if (exited) {
            done();
            reject(new Error(`DHCP server exited: ${stderr.slice(-20).join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for the DHCP server: ${stderr.slice(-20).join('\n')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    return {
      proc,
      lines,
      stderr,
      waitFor,
      apply: async (config) => {
        const before = lines.length;
        proc.stdin!.write(`${JSON.stringify(config)}\n`);
        await waitFor((l) => lines.indexOf(l) >= before && ('applied' in l || 'error' in l));
      },
      stop: () =>
        new Promise<void>((resolve) => {
          if (exited) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        }),
    };
  }

  close(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    // Processes started with `ip netns exec` inside a namespace die with it only if we kill them:
    // kill anything still inside our namespaces, by PID.
    for (const ns of [...this.clientNs, this.serverNs]) {
      for (const pid of sh(['ip', 'netns', 'pids', ns], { allowFail: true }).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      sh(['ip', 'netns', 'del', ns], { allowFail: true });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** A managed subnet 10.77.0.0/24 as the region would send it. */
export function labConfig(over: Record<string, unknown> = {}) {
  return {
    subnets: [
      {
        id: 1,
        cidr: '10.77.0.0/24',
        proxy_mode: false,
        gateway: '10.77.0.1',
        dns_servers: ['10.77.0.1'],
        domain: 'lab.test',
        lease_seconds: 600,
        dynamic_ranges: [{ start: '10.77.0.100', end: '10.77.0.199' }],
        reservations: [] as Array<{ mac: string; ip: string; hostname?: string }>,
        ...over,
      },
    ],
  };
}
