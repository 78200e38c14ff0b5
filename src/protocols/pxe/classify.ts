import { DecodeError } from '../../lib/errors.js';
import { Opt, type Options, optString } from '../dhcp4/options.js';
import { decodeUserClass } from '../dhcp4/user-class.js';
import { type ClientArch, clientArch } from './arch.js';

/**
 * What kind of network-boot client sent a DHCP request, from its options alone (pure, so the DHCP
 * server and the booter classify alike):
 *  - `ipxe`: iPXE itself — user class `iPXE` (raw or RFC 3004) or its option 175 present. It gets a
 *    script URL, never a loader again (that would loop).
 *  - `uefi-http`: vendor class `HTTPClient…`; it needs an http:// bootfile and option 60 echoed.
 *  - `pxe`: vendor class `PXEClient…`: a PXE ROM (BIOS or UEFI, see `arch.firmware`).
 *  - `none`: an ordinary DHCP client; no boot answer.
 */
export type BootClientKind = 'ipxe' | 'uefi-http' | 'pxe' | 'none';

export interface BootClient {
  kind: BootClientKind;
  /** From option 93 (first entry), else from the `Arch:NNNNN` field of option 60; null if neither. */
  arch: ClientArch | null;
  vendorClass: string | undefined;
  userClasses: string[];
  /** Option 97 (client machine identifier) as sent, to echo back (PXE spec 2.1, table 2-1). */
  guid: Buffer | undefined;
}

/** Option 93 is a list of 16-bit codes (RFC 4578 §2.1); firmware sends one. */
export function archCodes(opts: Options): number[] | undefined {
  const v = opts.get(Opt.ClientSystemArch);
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length % 2 !== 0) {
    throw new DecodeError(`option 93 has length ${v.length}, expected a multiple of 2`, { option: 93 });
  }
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

const VC_ARCH = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/;

export function classifyBootClient(opts: Options): BootClient {
  const vendorClass = optString(opts, Opt.VendorClass);
  const uc = opts.get(Opt.UserClass);
  const userClasses = uc === undefined ? [] : decodeUserClass(uc);
  const guid = opts.get(Opt.ClientGuid);
  let code = archCodes(opts)?.[0];
  if (code === undefined && vendorClass !== undefined) {
    const m = VC_ARCH.exec(vendorClass);
    if (m) code = Number(m[1]);
  }
  const arch = code === undefined ? null : clientArch(code);
  let kind: BootClientKind = 'none';
  if (userClasses.includes('iPXE') || opts.has(Opt.Ipxe)) kind = 'ipxe';
  else if (vendorClass?.startsWith('HTTPClient')) kind = 'uefi-http';
  else if (vendorClass?.startsWith('PXEClient')) kind = 'pxe';
  return { kind, arch, vendorClass, userClasses, guid: guid === undefined ? undefined : Buffer.from(guid) };
}
