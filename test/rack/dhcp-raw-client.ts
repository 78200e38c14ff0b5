/**
 * A raw UDP DHCP peer for the tests that no packaged client covers (relays, proxyDHCP on 4011,
 * malformed packets, INIT-REBOOT). Run inside a namespace; argv[2] is JSON:
 *   { bind: {address, port}, sends: [{hex, to, port}], waitMs, expect }
 * Sends each packet (in order, 50 ms apart), then prints every datagram received as a JSON line
 * {hex, from} until `expect` datagrams arrived or waitMs passed.
 */
import dgram from 'node:dgram';

const a = JSON.parse(process.argv[2]!) as {
  bind: { address: string; port: number };
  sends: Array<{ hex: string; to: string; port: number }>;
  waitMs: number;
  expect: number;
};
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
let got = 0;
s.on('message', (m, r) => {
  process.stdout.write(`${JSON.stringify({ hex: m.toString('hex'), from: `${r.address}:${r.port}` })}\n`);
  if (++got >= a.expect) s.close();
});
s.bind(a.bind.port, a.bind.address, async () => {
  s.setBroadcast(true);
  for (const x of a.sends) {
    await new Promise<void>((resolve) => s.send(Buffer.from(x.hex, 'hex'), x.port, x.to, () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  setTimeout(() => s.close(), a.waitMs).unref();
});
