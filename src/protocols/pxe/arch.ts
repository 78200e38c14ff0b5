/**
 * DHCP option 93, client system architecture (RFC 4578 §2.1 and the IANA "Processor Architecture
 * Types" registry), mapped to the firmware that sent it and to the first-stage loader kiln hands it.
 * MAAS's table (src/maascommon/bootmethods.py) picks the same firmware families; kiln's loaders are
 * iPXE builds where one exists (Debian's `ipxe` package ships the x86 ones).
 */
export type Firmware = 'bios' | 'uefi' | 'uefi-http' | 'ieee1275' | 'opal' | 's390' | 'uboot' | 'other';
export type Cpu = 'i386' | 'amd64' | 'arm64' | 'armhf' | 'ppc64el' | 's390x' | 'riscv64' | 'other';

export interface ClientArch {
  code: number;
  /** Short name for logs and the boot timeline. */
  name: string;
  firmware: Firmware;
  cpu: Cpu;
  /**
   * The file this firmware fetches first: a TFTP path for PXE firmware, the path under the rack's
   * HTTP root for UEFI HTTP boot. null: kiln has no loader for it and does not answer its boot.
   */
  loader: string | null;
}

function a(code: number, name: string, firmware: Firmware, cpu: Cpu, loader: string | null): ClientArch {
  return { code, name, firmware, cpu, loader };
}

const TABLE: readonly ClientArch[] = [
  a(0, 'x86 BIOS', 'bios', 'amd64', 'undionly.kpxe'),
  a(6, 'x86 UEFI', 'uefi', 'i386', null),
  // 7 is "EFI BC" in RFC 4578 but every x86-64 UEFI (OVMF included) sends it; 9 is the same in practice.
  a(7, 'x86-64 UEFI', 'uefi', 'amd64', 'ipxe.efi'),
  a(9, 'x86-64 UEFI', 'uefi', 'amd64', 'ipxe.efi'),
  a(10, 'ARM32 UEFI', 'uefi', 'armhf', null),
  a(11, 'ARM64 UEFI', 'uefi', 'arm64', 'bootaa64.efi'),
  a(12, 'PowerPC Open Firmware', 'ieee1275', 'ppc64el', null),
  a(14, 'POWER OPAL', 'opal', 'ppc64el', null),
  a(15, 'x86 UEFI HTTP', 'uefi-http', 'i386', null),
  a(16, 'x86-64 UEFI HTTP', 'uefi-http', 'amd64', 'ipxe.efi'),
  a(18, 'ARM32 UEFI HTTP', 'uefi-http', 'armhf', null),
  a(19, 'ARM64 UEFI HTTP', 'uefi-http', 'arm64', 'bootaa64.efi'),
  a(22, 'ARM64 U-Boot', 'uboot', 'arm64', null),
  a(27, 'RISC-V 64 UEFI', 'uefi', 'riscv64', null),
  a(28, 'RISC-V 64 UEFI HTTP', 'uefi-http', 'riscv64', null),
  a(31, 's390 basic', 's390', 's390x', null),
  a(32, 's390 extended', 's390', 's390x', null),
];

const BY_CODE = new Map(TABLE.map((e) => [e.code, e]));

/** The table entry for an option 93 value; unknown codes get an 'other' entry with no loader. */
export function clientArch(code: number): ClientArch {
  return BY_CODE.get(code) ?? a(code, `arch ${code}`, 'other', 'other', null);
}

export function knownArchitectures(): readonly ClientArch[] {
  return TABLE;
}
