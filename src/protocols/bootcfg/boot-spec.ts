import type { Mac } from '../../lib/mac.js';

/**
 * What a machine boots now, in MAAS's purpose names: `enlist` (unknown MAC), `commissioning`,
 * `xinstall` (deploying) boot a kernel + initrd over the network; `local` hands back to the
 * firmware to boot from disk; `poweroff` switches the machine off (or, where the loader cannot,
 * fails the netboot so the firmware stops trying us).
 */
export type BootPurpose = 'enlist' | 'commissioning' | 'xinstall' | 'local' | 'poweroff';

export const BOOT_PURPOSES: readonly BootPurpose[] = [
  'enlist',
  'commissioning',
  'xinstall',
  'local',
  'poweroff',
];

export type NetbootPurpose = 'enlist' | 'commissioning' | 'xinstall';

export function isNetbootPurpose(p: BootPurpose): p is NetbootPurpose {
  return p === 'enlist' || p === 'commissioning' || p === 'xinstall';
}

/** A kernel and initrd to fetch over HTTP, and the command line to start the kernel with. */
export interface NetbootFiles {
  /** Absolute http(s) URL of the kernel. */
  kernelUrl: string;
  /** Absolute http(s) URL of the initrd. */
  initrdUrl: string;
  /** The initrd's name inside iPXE: Debian's iPXE under UEFI needs `initrd=<name>` on the command line. */
  initrdName: string;
  /** Kernel parameters, one word each (`console=ttyS0`, `kiln.token=…`); checked by kernel-params.ts. */
  params: readonly string[];
}

export type BootSpec =
  | { purpose: NetbootPurpose; mac: Mac; files: NetbootFiles }
  | { purpose: 'local' | 'poweroff'; mac: Mac };
