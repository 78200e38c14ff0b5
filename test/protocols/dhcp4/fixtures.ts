import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { intToIp } from '../../../src/lib/ipv4.js';
import type { DhcpPacket } from '../../../src/protocols/dhcp4/packet.js';

export const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'dhcp4');

/** Real client messages captured by test/fixtures/dhcp4/capture.sh. */
export function capturedPackets(): Array<{ name: string; bytes: Buffer }> {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => ({
      name: f.replace(/\.hex$/, ''),
      bytes: Buffer.from(readFileSync(join(FIXTURES, f), 'utf8').trim(), 'hex'),
    }));
}

/** A readable, JSON-stable view of a decoded packet for the golden files. */
export function readable(p: DhcpPacket): Record<string, unknown> {
  return {
    op: p.op,
    htype: p.htype,
    hlen: p.hlen,
    hops: p.hops,
    xid: p.xid.toString(16).padStart(8, '0'),
    secs: p.secs,
    flags: p.flags.toString(16).padStart(4, '0'),
    ciaddr: intToIp(p.ciaddr),
    yiaddr: intToIp(p.yiaddr),
    siaddr: intToIp(p.siaddr),
    giaddr: intToIp(p.giaddr),
    chaddr: p.chaddr.subarray(0, p.hlen).toString('hex'),
    sname: p.sname,
    file: p.file,
    options: Object.fromEntries([...p.options].map(([k, v]) => [String(k), v.toString('hex')])),
  };
}
