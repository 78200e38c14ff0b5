/**
 * Boots a QEMU VM from the network inside a lab namespace. TCG only: /dev/kvm exists on these
 * machines but fails with MSR errors (REFERENCE.md). The serial console goes to a file the test
 * reads; `-no-reboot` makes the VM's poweroff (or a reboot) end the QEMU process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onAbort } from './cleanup.js';
import type { Lab } from './lab.js';

export type Firmware = 'bios' | 'uefi-pxe' | 'uefi-http';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';

export interface Vm {
  pid: number;
  mac: string;
  firmware: Firmware;
  serialLog: string;
  startedAt: number;
  exited: Promise<number | null>;
  /** The QEMU process has ended (the VM powered off, rebooted, or QEMU failed). */
  hasExited(): boolean;
  /** Ended within its first seconds: QEMU could not start (bad option, missing firmware). */
  readonly exitedEarly: boolean;
  serial(): string;
  kill(): void;
}

export function bootVm(opts: {
  lab: Lab;
  mac: string;
  firmware: Firmware;
  dir: string;
  memoryMiB?: number;
}): Vm {
  const { lab, mac, firmware, dir } = opts;
  const tap = lab.addTap();
  const tag = mac.replace(/:/g, '');
  const serialLog = join(dir, `serial-${tag}.log`);
  const args = [
    'qemu-system-x86_64',
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-m',
    String(opts.memoryMiB ?? 512),
    '-smp',
    '1',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${serialLog}`,
    '-no-reboot',
    '-boot',
    'n',
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
  ];
  if (firmware === 'bios') {
    // Debian's ipxe-qemu ROM for virtio-net (pxe-virtio.rom): BIOS iPXE asks DHCP with 77=iPXE.
    args.push('-device', `virtio-net-pci,netdev=n0,mac=${mac}`);
  } else {
    const vars = join(dir, `OVMF_VARS-${tag}.fd`);
    copyFileSync(OVMF_VARS, vars);
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
      // ROM off: OVMF's own virtio-net driver and PXE/HTTP boot, not iPXE's option ROM.
      '-device',
      `virtio-net-pci,netdev=n0,mac=${mac},romfile=`,
    );
    if (firmware === 'uefi-http') {
      // `-boot n` alone tries PXE first; switching PXE off leaves OVMF's UEFI HTTP boot.
      args.push(
        '-fw_cfg',
        'name=opt/org.tianocore/IPv4PXESupport,string=n',
        '-fw_cfg',
        'name=opt/org.tianocore/IPv6PXESupport,string=n',
      );
    }
  }
  const out = openSync(join(dir, `qemu-${tag}.log`), 'w');
  const child: ChildProcess = spawn(lab.exec(args)[0]!, lab.exec(args).slice(1), {
    stdio: ['ignore', out, out],
  });
  const startedAt = Date.now();
  let endedAt = 0;
  const forget = onAbort(() => process.kill(child.pid!, 'SIGKILL'));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      forget();
      endedAt = Date.now();
      resolve(code);
    }),
  );
  return {
    hasExited: () => endedAt !== 0,
    get exitedEarly() {
      return endedAt !== 0 && endedAt - startedAt < 3000;
    },
    pid: child.pid!,
    mac,
    firmware,
    serialLog,
    startedAt,
    exited,
    serial: () => {
      try {
        return readFileSync(serialLog, 'utf8');
      } catch {
        return '';
      }
    },
    kill: () => {
      try {
        if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}
