import type Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import { isKilnError, KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ParsedArgsOf, ResultInputOf } from '../rpc/command.js';
import { GetBootConfig } from '../rpc/commands/boot.js';
import type { HandlerRegistry } from '../rpc/handlers.js';
import { type BootResource, listBootResources } from '../storage/boot-resources.js';
import { issueBootToken } from '../storage/boot-tokens.js';
import { appendEvent } from '../storage/events.js';
import { createMachine, findMachineByMac, type Machine, type MachineStatus } from '../storage/machines.js';

type Args = ParsedArgsOf<typeof GetBootConfig>;
type Answer = ResultInputOf<typeof GetBootConfig>;
type Purpose = Answer['purpose'];

/** The path the initramfs POSTs its hardware summary to (images/init.sh, `kiln.metadata_url=`). */
export const METADATA_HARDWARE_PATH = '/metadata/v1/hardware';

/** The boot resource kiln boots for enlistment and commissioning (images/README.md). */
export const EPHEMERAL_IMAGE = 'kiln/ephemeral';

export interface BootPolicyOptions {
  db: Database.Database;
  config: Config;
  logger: Logger;
  /** How long a boot token stays valid (ms): long enough for a slow boot and the report's retries. */
  tokenTtlMs?: number;
  now?: () => number;
}

/**
 * MAAS's purpose by status (REFERENCE.md). A NEW machine without a hardware inventory is still
 * enlisting: it boots `enlist` again (the first answer may have been for another boot path or lost
 * in a reboot), and once its report has arrived it is powered off until someone commissions it.
 */
export function purposeFor(m: Pick<Machine, 'status' | 'hardware'>): Purpose {
  const s: MachineStatus = m.status;
  switch (s) {
    case 'NEW':
      return m.hardware === null ? 'enlist' : 'poweroff';
    case 'COMMISSIONING':
    case 'TESTING':
    case 'ENTERING_RESCUE_MODE':
    case 'RESCUE_MODE':
      return 'commissioning';
    case 'DEPLOYING':
      return 'xinstall';
    case 'DEPLOYED':
      return 'local';
    default:
      return 'poweroff';
  }
}

/**
 * GetBootConfig, the region's boot policy: find the machine by MAC (creating an unknown one as NEW
 * with that MAC and arch), decide its purpose, and for a network boot answer the ephemeral image's
 * kernel and initrd with a command line carrying the metadata URL and a fresh per-machine token.
 * Every answer appends to the machine's boot timeline.
 */
export function getBootConfig(opts: BootPolicyOptions, args: Args): Answer {
  const { db, logger } = opts;
  const now = opts.now ?? Date.now;
  const arch = args.arch.includes('/') ? args.arch : `${args.arch}/${args.subarch ?? 'generic'}`;
  let machine = findMachineByMac(db, args.mac);
  let created = false;
  if (!machine) {
    try {
      machine = createMachine(db, { boot_mac: args.mac, architecture: arch, status: 'NEW' });
      created = true;
    } catch (err) {
      // Another worker created it between our lookup and insert (two racks, or a retry).
      if (!isKilnError(err, 'KILN_ERR_CONFLICT')) throw err;
      machine = findMachineByMac(db, args.mac);
      if (!machine) throw err;
    }
    if (created) {
      logger.info({ system_id: machine.system_id, mac: args.mac, arch }, 'enlisting unknown machine');
      appendEvent(db, machine.id, {
        type: 'enlist.created',
        level: 'info',
        text: `Enlisting: unknown MAC ${args.mac} (${arch}) asked to boot from ${args.remote_ip}; created as NEW`,
        data: { mac: args.mac, arch, remote_ip: args.remote_ip },
      });
    }
  }
  const purpose = purposeFor(machine);
  const [architecture, subarch] = splitArch(machine.architecture);
  const answer: Answer = {
    system_id: machine.system_id,
    hostname: machine.hostname,
    domain: 'maas',
    purpose,
    arch: architecture,
    subarch,
    osystem: 'kiln',
    release: 'ephemeral',
    kernel: null,
    initrd: null,
    kernel_params: '',
    metadata_url: null,
  };
  if (purpose === 'enlist' || purpose === 'commissioning' || purpose === 'xinstall') {
    const image = ephemeralImage(db, machine.architecture);
    const kernel = image?.files.find((f) => f.filetype === 'kernel');
    const initrd = image?.files.find((f) => f.filetype === 'initrd');
    if (!image || !kernel || !initrd) {
      appendEvent(db, machine.id, {
        type: 'boot.no_image',
        level: 'error',
        text: `No boot image for ${machine.architecture}: import one (npm run images:build, or kiln images import)`,
      });
      throw new KilnError(
        'KILN_ERR_BOOT_NO_IMAGE',
        `no boot image with a kernel and initrd for ${machine.architecture}`,
        {
          architecture: machine.architecture,
        },
      );
    }
    const metadataUrl = metadataUrlFor(opts.config, args.local_ip);
    const token = issueBootToken(db, machine.id, opts.tokenTtlMs ?? 2 * 3600_000, now());
    answer.kernel = { filename: kernel.name, sha256: kernel.sha256, size: kernel.size };
    answer.initrd = { filename: initrd.name, sha256: initrd.sha256, size: initrd.size };
    const squashfs = image.files.find((f) => f.filetype === 'squashfs');
    if (squashfs) answer.squashfs = { filename: squashfs.name, sha256: squashfs.sha256, size: squashfs.size };
    answer.metadata_url = metadataUrl;
    // The last console= is /dev/console: the serial line, which labs and the e2e test read.
    answer.kernel_params = [
      'console=tty0',
      'console=ttyS0,115200',
      `kiln.metadata_url=${metadataUrl}`,
      `kiln.token=${token}`,
    ].join(' ');
  }
  appendEvent(db, machine.id, {
    type: 'boot.config',
    level: 'info',
    text: `Boot config (${purpose}) sent for ${args.bios_boot_method ?? 'boot'} from ${args.remote_ip} via rack address ${args.local_ip}`,
    data: {
      purpose,
      mac: args.mac,
      arch: args.arch,
      method: args.bios_boot_method ?? null,
      remote_ip: args.remote_ip,
      local_ip: args.local_ip,
      ...(answer.kernel ? { kernel: answer.kernel.sha256 } : {}),
    },
  });
  return answer;
}

/** Registers GetBootConfig on a region worker's RPC handler registry. */
export function registerBootConfigHandler(handlers: HandlerRegistry, opts: BootPolicyOptions): void {
  handlers.register(GetBootConfig, (args) => getBootConfig(opts, args));
}

/**
 * The URL machines report to. `region.url` when set (a region on another host than the rack);
 * otherwise the region's HTTP port on the rack address the machine reached, which is right under
 * `kiln all` where both roles share the host.
 */
export function metadataUrlFor(config: Config, rackIp: string): string {
  const base = config.region.url.trim().replace(/\/+$/, '');
  if (base) return `${base}${METADATA_HARDWARE_PATH}`;
  const host = rackIp.includes(':') ? `[${rackIp}]` : rackIp;
  return `http://${host}:${config.region.http.port}${METADATA_HARDWARE_PATH}`;
}

/** `kiln/ephemeral` for the architecture, else any image for it with a kernel and initrd. */
function ephemeralImage(db: Database.Database, architecture: string): BootResource | undefined {
  const all = listBootResources(db, { architecture, limit: 1000 }).items;
  const usable = all.filter(
    (r) => r.files.some((f) => f.filetype === 'kernel') && r.files.some((f) => f.filetype === 'initrd'),
  );
  return usable.find((r) => r.name === EPHEMERAL_IMAGE) ?? usable[0];
}

function splitArch(a: string): [string, string] {
  const i = a.indexOf('/');
  return i < 0 ? [a, 'generic'] : [a.slice(0, i), a.slice(i + 1)];
}
