// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} here is iPXE/grub script syntax, not a template.
import { type Mac, macDashes } from '../../lib/mac.js';
import type { BootSpec } from './boot-spec.js';
import { checkName, checkUrl, kernelCmdline } from './kernel-params.js';

/**
 * iPXE scripts. iPXE reaches `boot.ipxe` with its network already configured by DHCP, so no
 * script here runs `dhcp` or `ifconf` again: `ifconf` would wait ~16 s for IPv6 autoconfiguration
 * on a network without router advertisements (REFERENCE.md). Every failure path ends in `exit 1`
 * so the firmware falls through to its next boot option instead of sitting in an iPXE prompt.
 */

/**
 * The fixed first script, the same for every machine: it chains to the per-machine script by
 * MAC. `${mac:hexhyp}` is iPXE's dashed MAC of the booting NIC; `${buildarch}` (i386, x86_64,
 * arm64) and `${platform}` (pcbios, efi) travel in the query because one script serves all
 * firmware. `&` inside a word is plain text to iPXE; only a lone `&&`/`||` word is an operator.
 * The relative URL resolves against this script's own URL, so no address is baked in.
 */
export function renderBootIpxe(): string {
  return [
    '#!ipxe',
    "# kiln: chain to this machine's own script, chosen by the region from its MAC.",
    'echo kiln: ${mac} (${buildarch}/${platform}) asking for its boot script',
    'chain --autofree /boot/${mac:hexhyp}.ipxe?buildarch=${buildarch}&platform=${platform} || goto failed',
    'exit 0',
    ':failed',
    'echo kiln: no boot script for ${mac}, falling through to the next boot device',
    'exit 1',
    '',
  ].join('\n');
}

/** The per-machine script served at `/boot/<mac-with-dashes>.ipxe`. */
export function renderIpxeScript(spec: BootSpec): string {
  const head = ['#!ipxe', `# kiln: ${spec.purpose} for ${spec.mac}`];
  switch (spec.purpose) {
    case 'local':
      // Under UEFI a boot option that returns success sends EDK2 back to its boot manager; a
      // non-zero exit makes it try the next option (the disk), and BIOS treats both the same.
      return [...head, 'echo kiln: booting from local disk', 'exit 1', ''].join('\n');
    case 'poweroff':
      return [
        ...head,
        'echo kiln: nothing to boot, powering off',
        'poweroff || exit 1',
        // iPXE builds without the poweroff command fall through to the next boot device.
        'exit 1',
        '',
      ].join('\n');
    default: {
      const f = spec.files;
      const initrdName = checkName(f.initrdName);
      const cmdline = kernelCmdline([`initrd=${initrdName}`, ...bootifParam(spec.mac), ...f.params]);
      return [
        ...head,
        `echo kiln: ${spec.purpose}: fetching kernel and initrd`,
        `kernel ${checkUrl(f.kernelUrl)} ${cmdline} || goto failed`,
        `initrd --name ${initrdName} ${checkUrl(f.initrdUrl)} || goto failed`,
        'boot || goto failed',
        ':failed',
        `echo kiln: ${spec.purpose} netboot failed, falling through to the next boot device`,
        'exit 1',
        '',
      ].join('\n');
    }
  }
}

/** pxelinux's `IPAPPEND 2` form, which initramfs tools (and kiln's) read to know the boot NIC. */
export function bootifParam(mac: Mac): string[] {
  return [`BOOTIF=01-${macDashes(mac)}`];
}
