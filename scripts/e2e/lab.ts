/**
 * E2E lab network: one network namespace holding a bridge (the "rack's" provisioning network,
 * where kiln listens) and a tap device per VM enslaved to it. Nothing leaves the namespace, so the
 * test never touches the host's networks. Everything here runs commands as root (ip, QEMU).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { onAbort } from './cleanup.js';

export interface Lab {
  ns: string;
  bridge: string;
  /** The bridge's address: the rack's address machines reach (DHCP server, TFTP, HTTP). */
  address: string;
  prefix: number;
  /** CIDR of the lab subnet, e.g. 10.77.0.0/24. */
  cidr: string;
  addTap(): string;
  /** argv prefix that runs a command inside the namespace. */
  exec(argv: string[]): string[];
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates the namespace, bridge and loopback. `octet` picks 10.<octet>.0.0/24 (default 77). */
export function createLab(opts: { octet?: number } = {}): Lab {
  const id = randomBytes(3).toString('hex');
  const ns = `kiln-e2e-${id}`;
  const bridge = 'kbr0';
  const octet = opts.octet ?? 77;
  const address = `10.${octet}.0.1`;
  ip(['netns', 'add', ns]);
  const forget = onAbort(() => ip(['netns', 'del', ns]));
  let taps = 0;
  const lab: Lab = {
    ns,
    bridge,
    address,
    prefix: 24,
    cidr: `10.${octet}.0.0/24`,
    exec: (argv) => ['ip', 'netns', 'exec', ns, ...argv],
    addTap() {
      const tap = `ktap${taps++}`;
      ip(['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      ip(['-n', ns, 'link', 'set', tap, 'master', bridge]);
      ip(['-n', ns, 'link', 'set', tap, 'up']);
      return tap;
    },
    destroy() {
      forget();
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // Already gone.
      }
    },
  };
  try {
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', ns, 'link', 'add', bridge, 'type', 'bridge']);
    // No STP and no forwarding delay: a tap that appears must pass DHCP at once.
    ip(['-n', ns, 'link', 'set', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', bridge]);
    ip(['-n', ns, 'link', 'set', bridge, 'up']);
  } catch (err) {
    lab.destroy();
    throw err;
  }
  return lab;
}

/** Deletes namespaces left by earlier runs that were killed before cleaning up (kiln-e2e-*). */
export function removeStaleLabs(): void {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith('kiln-e2e-')) {
      // Only namespaces no process still uses: a concurrent run's namespace has its QEMU/kiln in it.
      const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).trim();
      if (pids === '') ip(['netns', 'del', name]);
    }
  }
}
