// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${...} here is iPXE/grub script syntax, not a template.
import type { BootSpec } from './boot-spec.js';
import { bootifParam } from './ipxe.js';
import { checkUrl, kernelCmdline } from './kernel-params.js';

/**
 * grub configs for the Secure Boot path (shim → grub). grub fetches `grub/grub.cfg-<mac>` by
 * itself only in some builds, so `grub/grub.cfg` (what every build asks first) sends it there
 * with `${net_default_mac}`. Kernel and initrd are fetched over HTTP from the rack.
 */
export function renderGrubConfig(spec: BootSpec): string {
  const head = [`# kiln: ${spec.purpose} for ${spec.mac}`, 'set default=0', 'set timeout=0'];
  switch (spec.purpose) {
    case 'local':
      // A non-zero exit makes the UEFI boot manager try its next option: the local disk.
      return [...head, "menuentry 'local' {", '  exit 1', '}', ''].join('\n');
    case 'poweroff':
      return [...head, "menuentry 'poweroff' {", '  halt', '}', ''].join('\n');
    default: {
      const f = spec.files;
      return [
        ...head,
        `menuentry '${spec.purpose}' {`,
        `  linux ${grubPath(checkUrl(f.kernelUrl))} ${kernelCmdline([...bootifParam(spec.mac), ...f.params])}`,
        `  initrd ${grubPath(checkUrl(f.initrdUrl))}`,
        '}',
        '',
      ].join('\n');
    }
  }
}

export function renderGrubDefault(): string {
  return [
    '# kiln: load the per-machine config for the NIC grub booted from',
    'configfile /grub/grub.cfg-${net_default_mac}',
    '',
  ].join('\n');
}

/** `http://host:port/a/b` → `(http,host:port)/a/b`, grub's device syntax. */
function grubPath(url: string): string {
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(url)!;
  return `(${m[1]},${m[2]})${m[3] ?? '/'}`;
}
