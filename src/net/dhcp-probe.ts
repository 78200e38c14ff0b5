import { randomBytes } from 'node:crypto';
import { intToIp } from '../lib/ipv4.js';
import { CLIENT_PORT, MsgType, SERVER_PORT } from '../protocols/dhcp4/message.js';
import { Opt, optIp } from '../protocols/dhcp4/options.js';
import { BOOTREQUEST, decodePacket, encodePacket, FLAG_BROADCAST } from '../protocols/dhcp4/packet.js';
import { bindDhcpSocket, type DhcpNative } from './dhcp-server.js';

export interface ProbeOptions {
  ifname: string;
  /** How long to listen for an offer. */
  timeoutMs: number;
  /** Our own addresses: offers from them are not "another server". */
  ownAddresses: number[];
  native?: DhcpNative | null;
  /** The subnet's broadcast address (e.g. 10.0.0.255), also probed. */
  directedBroadcast?: string;
  /** Ports, for tests; 67 and 68 otherwise. */
  serverPort?: number;
  clientPort?: number;
}

/**
 * Look for another DHCP server on an interface: broadcast a DISCOVER (broadcast flag set, so the
 * answer reaches us without an address) from a random locally-administered MAC and report the first
 * server that offers. Returns its server identifier (or source address) as text, or null.
 */
export async function probeDhcpServer(o: ProbeOptions): Promise<string | null> {
  const mac = randomBytes(6);
  mac[0] = (mac[0]! & 0xfe) | 0x02;
  const xid = randomBytes(4).readUInt32BE(0);
  const socket = await bindDhcpSocket(o.native, o.ifname, '0.0.0.0', o.clientPort ?? CLIENT_PORT);
  try {
    const found = new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), o.timeoutMs);
      socket.on('message', (msg, rinfo) => {
        try {
          const p = decodePacket(msg);
          if (p.xid !== xid || p.options.get(Opt.MessageType)?.[0] !== MsgType.Offer) return;
          const sid = optIp(p.options, Opt.ServerId);
          if (sid !== undefined && o.ownAddresses.includes(sid)) return;
          clearTimeout(timer);
          resolve(sid !== undefined ? intToIp(sid) : rinfo.address);
        } catch {
          // Not a well-formed answer to us: keep listening.
        }
      });
    });
    const discover = encodePacket({
      op: BOOTREQUEST,
      htype: 1,
      hlen: 6,
      hops: 0,
      xid,
      secs: 0,
      flags: FLAG_BROADCAST,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: Buffer.concat([mac, Buffer.alloc(10)]),
      sname: '',
      file: '',
      options: new Map([
        [Opt.MessageType, Buffer.from([MsgType.Discover])],
        [Opt.ParameterRequestList, Buffer.from([1, 3, 6])],
      ]),
    });
    // The limited broadcast needs a route (or SO_BINDTODEVICE) to leave; a rack network with no default
    // route refuses it with ENETUNREACH. The subnet's directed broadcast reaches the same servers.
    for (const to of ['255.255.255.255', ...(o.directedBroadcast ? [o.directedBroadcast] : [])]) {
      socket.send(discover, o.serverPort ?? SERVER_PORT, to, () => {});
    }
    return await found;
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
