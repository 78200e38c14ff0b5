import type { BootSpec } from './boot-spec.js';
import { bootifParam } from './ipxe.js';
import { checkUrl, kernelCmdline } from './kernel-params.js';

/**
 * pxelinux configs. kiln serves `lpxelinux.0`, the build that fetches `http://` paths itself, so
 * KERNEL and INITRD are URLs on the rack's HTTP server and only the loader, `ldlinux.c32` and the
 * config go over TFTP. pxelinux asks for `pxelinux.cfg/01-<mac>` first (kiln always answers it),
 * then the hex IP shortened a digit at a time, then `default`.
 */
export function renderPxelinuxConfig(spec: BootSpec): string {
  const head = [`# kiln: ${spec.purpose} for ${spec.mac}`];
  switch (spec.purpose) {
    case 'local':
      return [...head, 'DEFAULT local', 'LABEL local', '  LOCALBOOT 0', ''].join('\n');
    case 'poweroff':
      // poweroff.c32 (syslinux-common) needs libcom32.c32, which the rack serves beside it.
      return [...head, 'DEFAULT poweroff', 'LABEL poweroff', '  COM32 poweroff.c32', ''].join('\n');
    default: {
      const f = spec.files;
      return [
        ...head,
        `DEFAULT ${spec.purpose}`,
        `LABEL ${spec.purpose}`,
        `  KERNEL ${checkUrl(f.kernelUrl)}`,
        `  INITRD ${checkUrl(f.initrdUrl)}`,
        `  APPEND ${kernelCmdline([...bootifParam(spec.mac), ...f.params])}`,
        '',
      ].join('\n');
    }
  }
}

/**
 * `pxelinux.cfg/default`: reached only when no per-MAC config was served, so there is no machine
 * to decide for; boot the local disk rather than guess.
 */
export function renderPxelinuxDefault(): string {
  return [
    '# kiln: no per-machine config was found; boot from local disk',
    'DEFAULT local',
    'LABEL local',
    '  LOCALBOOT 0',
    '',
  ].join('\n');
}
