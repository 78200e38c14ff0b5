import { encodeSubOptions } from '../dhcp4/options.js';

/**
 * Option 43 for a proxyDHCP offer (PXE spec 2.1 §2.2.5, sub-option 6 PXE_DISCOVERY_CONTROL): bit 3
 * (value 8) tells the ROM to skip boot-server discovery and boot the file in the offer at once.
 */
export function pxeVendorOptions(): Buffer {
  return encodeSubOptions(new Map([[6, Buffer.from([8])]]));
}

/**
 * Option 175 for iPXE with its setting 176 (no-pxedhcp) = 1: iPXE otherwise waits ~3 s for proxyDHCP
 * offers after an ordinary one (REFERENCE.md; iPXE src/include/ipxe/dhcp.h DHCP_EB_NO_PXEDHCP).
 */
export function ipxeNoProxyDhcp(): Buffer {
  return encodeSubOptions(new Map([[176, Buffer.from([1])]]));
}
