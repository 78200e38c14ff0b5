import { intToIp } from '../lib/ipv4.js';
import type { BootAnswer, BootQuery } from '../net/dhcp-policy.js';

export interface DefaultBootOptions {
  /** Rack boot HTTP port (rack.http.port). */
  httpPort: number;
  /** rack.advertise_address when set; otherwise the rack's address in the client's subnet. */
  advertiseAddress?: string;
}

/**
 * The default DHCP boot answer (the booter may replace it): the first stage by option 93, then
 * everything over HTTP (DESIGN.md, "the boot of one machine").
 *  - iPXE → the fixed script http://<rack>:5248/boot.ipxe, with 175.176=1 so it skips the proxyDHCP wait.
 *    Checked first: iPXE loaded from a PXE ROM still sends PXEClient, and handing it the loader
 *    again would loop.
 *  - UEFI HTTP boot → an http:// URL to the loader, with option 60 `HTTPClient` echoed (OVMF ignores
 *    an offer without it).
 *  - PXE ROMs (BIOS, UEFI) → the loader's TFTP path; siaddr/66 point at the rack.
 */
export function defaultBootAnswer(opts: DefaultBootOptions): (q: BootQuery) => BootAnswer | null {
  return (q) => {
    const host = opts.advertiseAddress || intToIp(q.subnet.serverAddress);
    const base = `http://${host}:${opts.httpPort}/`;
    const { client } = q;
    if (client.kind === 'ipxe') return { bootfile: `${base}boot.ipxe`, ipxeNoProxyDhcp: true };
    const loader = client.arch?.loader;
    if (!loader) return null;
    if (client.kind === 'uefi-http') return { bootfile: base + loader, vendorClass: 'HTTPClient' };
    if (client.kind === 'pxe') {
      return q.subnet.mode === 'proxy'
        ? { bootfile: loader, vendorClass: 'PXEClient' }
        : { bootfile: loader };
    }
    return null;
  };
}
