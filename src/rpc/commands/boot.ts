import { z } from 'zod';
import { defineCommand } from '../command.js';

/** One boot file the rack serves from its image cache (`/images/<sha256>/<filename>`). */
export const BootFile = z.object({
  filename: z.string().min(1).max(255),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative().optional(),
});
export type BootFile = z.infer<typeof BootFile>;

/** MAAS's purposes: what the machine boots now. */
export const BootPurpose = z.enum(['enlist', 'commissioning', 'xinstall', 'local', 'poweroff']);
export type BootPurpose = z.infer<typeof BootPurpose>;

/**
 * rack → region: what should this machine boot now? After MAAS's GetBootConfig. The handler (the
 * boot policy) is registered by region/boot-config.ts; an unknown MAC is created as NEW and answered
 * with purpose `enlist`.
 */
export const GetBootConfig = defineCommand({
  name: 'GetBootConfig',
  servedBy: 'region',
  since: 1,
  summary: 'Boot configuration for a machine by MAC: purpose, kernel/initrd, command line, host name.',
  args: z.strictObject({
    /** The asking rack (its connection also knows; kept for MAAS parity and logs). */
    rack_system_id: z.string().max(64).nullable().optional(),
    /** The machine's id when the rack already knows it. */
    system_id: z.string().max(64).nullable().optional(),
    mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'lower-case colon-separated MAC'),
    /** kiln architecture (`amd64`, `arm64`, ...) derived from DHCP option 93 / iPXE ${buildarch}. */
    arch: z.string().min(1).max(32),
    subarch: z.string().max(32).optional(),
    /** DHCP option 93 value when known. */
    client_arch: z.number().int().min(0).max(0xffff).optional(),
    /** Rack address the machine reached (used in URLs handed back). */
    local_ip: z.string().max(64),
    remote_ip: z.string().max(64),
    /** pxe | uefi | uefi-http | ipxe | grub | pxelinux. */
    bios_boot_method: z.string().max(32).optional(),
  }),
  result: z.object({
    system_id: z.string(),
    hostname: z.string(),
    domain: z.string(),
    purpose: BootPurpose,
    arch: z.string(),
    subarch: z.string(),
    osystem: z.string(),
    release: z.string(),
    /** Absent for `local` and `poweroff`. */
    kernel: BootFile.nullable(),
    initrd: BootFile.nullable(),
    /** Root filesystem image for ephemeral environments, when the image has one. */
    squashfs: BootFile.nullable().optional(),
    /** The whole kernel command line except `initrd=` (the renderer adds what its loader needs). */
    kernel_params: z.string().max(4096),
    /** Where the booted environment reports (hardware inventory, progress). */
    metadata_url: z.string().max(2048).nullable(),
    extra: z.record(z.string(), z.unknown()).optional(),
  }),
  errors: ['KILN_ERR_NOT_FOUND', 'KILN_ERR_VALIDATION', 'KILN_ERR_BOOT_NO_IMAGE'],
});
