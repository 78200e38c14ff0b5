import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { intToIp, ipToInt } from '../../src/lib/ipv4.js';
import { MsgType } from '../../src/protocols/dhcp4/message.js';
import { Opt, optIp, optString } from '../../src/protocols/dhcp4/options.js';
import {
  BOOTREQUEST,
  type DhcpPacket,
  decodePacket,
  encodePacket,
  FLAG_BROADCAST,
} from '../../src/protocols/dhcp4/packet.js';
import { FIXTURES } from '../protocols/dhcp4/fixtures.js';
import { DhcpLab, labConfig, parseEnv, type ServerHandle } from './dhcp-lab.js';

const PXE_BIOS = ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000'];

function request(
  mac: string,
  type: number,
  over: Partial<DhcpPacket> = {},
  opts: Array<[number, Buffer]> = [],
): string {
  return encodePacket({
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x4b494c4e,
    secs: 0,
    flags: FLAG_BROADCAST,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: Buffer.concat([Buffer.from(mac.replace(/:/g, ''), 'hex'), Buffer.alloc(10)]),
    sname: '',
    file: '',
    options: new Map([[Opt.MessageType, Buffer.from([type])], ...opts]),
    ...over,
  }).toString('hex');
}

function leaseRows(dataDir: string): Array<{ ip: number; mac: string; state: string }> {
  const db = new Database(join(dataDir, 'rack.db'), { readonly: true });
  try {
    return db.prepare('SELECT ip, mac, state FROM dhcp_lease ORDER BY ip').all() as never;
  } finally {
    db.close();
  }
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rack DHCP in network namespaces', () => {
  let lab: DhcpLab;
  let server: ServerHandle;
  const reserved = { mac: '02:00:00:00:00:03', ip: '10.77.0.50', hostname: 'reserved-one' };
  const config = () =>
    labConfig({ reservations: [reserved] }) as ReturnType<typeof labConfig> & {
      subnets: Array<Record<string, unknown>>;
    };

  before(async () => {
    lab = new DhcpLab();
    server = lab.startServer({ config: config() });
    await server.waitFor((l) => 'ready' in l);
  });
  after(async () => {
    await server?.stop();
    lab?.close();
  });

  test('udhcpc gets a lease with the subnet options, renews it and releases it', async () => {
    const ns = lab.addClient('02:00:00:00:00:01');
    const out = join(lab.dir, 'renew');
    const p = lab.spawn(
      ns,
      ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-t', '4', '-T', '1', '-s', lab.udhcpcScript],
      {
        KILN_OUT: out,
      },
    );
    const env = await until(
      'bound',
      () => existsSync(`${out}.bound`) && parseEnv(readFileSync(`${out}.bound`, 'utf8')),
    );
    assert.match(env.ip!, /^10\.77\.0\.1\d\d$/);
    assert.equal(env.router, '10.77.0.1');
    assert.equal(env.dns, '10.77.0.1');
    assert.equal(env.domain, 'lab.test');
    assert.equal(env.serverid, '10.77.0.1');
    assert.equal(env.lease, '600');
    assert.equal(env.subnet, '255.255.255.0');
    assert.equal(env.boot_file, undefined, 'an ordinary client gets no boot file');
    // SIGUSR1: renew (unicast REQUEST with ciaddr, RENEWING) — ACKed with the same address.
    p.kill('SIGUSR1');
    const renewed = await until(
      'renew',
      () => existsSync(`${out}.renew`) && parseEnv(readFileSync(`${out}.renew`, 'utf8')),
    );
    assert.equal(renewed.ip, env.ip);
    // SIGUSR2: release; the server records it.
    p.kill('SIGUSR2');
    const ip = ipToInt(env.ip!);
    await until('released', () =>
      leaseRows(join(lab.dir, 'data')).find((r) => r.ip === ip && r.state === 'released'),
    );
    p.kill('SIGTERM');
  });

  test('a second client gets another address; a reservation gets its fixed address and host name', () => {
    const a = lab.udhcpc(lab.addClient('02:00:00:00:00:02'));
    const b = lab.udhcpc(lab.addClient(reserved.mac));
    assert.notEqual(a!.ip, b!.ip);
    assert.equal(b!.ip, reserved.ip);
    assert.equal(b!.hostname, reserved.hostname);
  });

  test('dhclient gets a lease and releases it', async () => {
    const ns = lab.addClient('02:00:00:00:00:04');
    const lf = join(lab.dir, 'dhclient.leases');
    const args = [
      'dhclient',
      '-1',
      '-sf',
      '/bin/true',
      '-lf',
      lf,
      '-pf',
      join(lab.dir, 'dhclient.pid'),
      'eth0',
    ];
    const r = lab.exec(ns, args);
    assert.equal(r.status, 0, r.stderr);
    const m = /fixed-address (10\.77\.0\.\d+);/.exec(readFileSync(lf, 'utf8'));
    assert.ok(m, 'lease file has an address');
    const ip = ipToInt(m[1]!);
    await until('active', () =>
      leaseRows(join(lab.dir, 'data')).find((x) => x.ip === ip && x.state === 'active'),
    );
    // dhclient -r unicasts a RELEASE from its address, so give it the address first.
    lab.exec(ns, ['ip', 'addr', 'add', `${m[1]}/24`, 'dev', 'eth0']);
    lab.exec(ns, [
      'dhclient',
      '-r',
      '-sf',
      '/bin/true',
      '-lf',
      lf,
      '-pf',
      join(lab.dir, 'dhclient.pid'),
      'eth0',
    ]);
    await until('released', () =>
      leaseRows(join(lab.dir, 'data')).find((x) => x.ip === ip && x.state === 'released'),
    );
  });

  test('udhcpc posing as firmware gets the right boot file for BIOS, UEFI, UEFI HTTP and iPXE', () => {
    const bios = lab.udhcpc(lab.addClient('02:00:00:00:01:01'), PXE_BIOS);
    assert.equal(bios!.boot_file, 'undionly.kpxe');
    assert.equal(bios!.siaddr, '10.77.0.1');
    const uefi = lab.udhcpc(lab.addClient('02:00:00:00:01:02'), [
      '-V',
      'PXEClient:Arch:00007:UNDI:003000',
      '-x',
      '93:0007',
    ]);
    assert.equal(uefi!.boot_file, 'ipxe.efi');
    const http = lab.udhcpc(lab.addClient('02:00:00:00:01:03'), [
      '-V',
      'HTTPClient:Arch:00016:UNDI:003000',
      '-x',
      '93:0010',
    ]);
    assert.equal(http!.boot_file, 'http://10.77.0.1:5248/ipxe.efi');
    const ipxe = lab.udhcpc(lab.addClient('02:00:00:00:01:04'), [...PXE_BIOS, '-x', '77:69505845']);
    assert.equal(ipxe!.boot_file, 'http://10.77.0.1:5248/boot.ipxe');
    assert.equal(ipxe!.opt175, 'b00101ff', 'iPXE told not to wait for proxyDHCP (175.176 = 1)');
  });

  test('the DISCOVERs captured from OVMF HTTP boot and the iPXE ROM get their answers', () => {
    const ns = lab.addClient('02:00:00:00:01:05');
    lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.71/24', 'dev', 'eth0']);
    const answer = (name: string) => {
      const hex = readFileSync(join(FIXTURES, `${name}.hex`), 'utf8').trim();
      const [got] = lab.raw(ns, {
        bind: { address: '0.0.0.0', port: 68 },
        sends: [{ hex, to: '10.77.0.255', port: 67 }],
      });
      assert.ok(got, `${name} answered`);
      return decodePacket(Buffer.from(got.hex, 'hex'));
    };
    const http = answer('ovmf-http-discover');
    assert.equal(optString(http.options, Opt.BootfileName), 'http://10.77.0.1:5248/ipxe.efi');
    assert.equal(optString(http.options, Opt.VendorClass), 'HTTPClient', 'option 60 echoed (OVMF needs it)');
    assert.ok(http.options.has(Opt.ClientGuid), 'option 97 kept');
    const ipxe = answer('ipxe-bios-discover');
    assert.equal(ipxe.file, 'http://10.77.0.1:5248/boot.ipxe');
  });

  test('a relayed request is served from the subnet holding giaddr, answered to the relay with option 82', async () => {
    const cfg = config();
    cfg.subnets.push({
      ...cfg.subnets[0]!,
      id: 2,
      cidr: '10.78.0.0/24',
      gateway: '10.78.0.1',
      dynamic_ranges: [{ start: '10.78.0.100', end: '10.78.0.199' }],
      reservations: [],
    });
    await server.apply(cfg);
    const ns = lab.addClient('02:00:00:00:02:01');
    lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.60/24', 'dev', 'eth0']);
    lab.exec(ns, ['ip', 'addr', 'add', '10.78.0.1/24', 'dev', 'eth0']);
    lab.exec(lab.serverNs, ['ip', 'route', 'add', '10.78.0.0/24', 'via', '10.77.0.60']);
    const relayInfo = Buffer.from([1, 3, 0x61, 0x62, 0x63]);
    const got = lab.raw(ns, {
      bind: { address: '0.0.0.0', port: 67 },
      sends: [
        {
          hex: request(
            '02:00:00:00:02:02',
            MsgType.Discover,
            { giaddr: ipToInt('10.78.0.1'), hops: 1, flags: 0 },
            [[Opt.RelayAgentInfo, relayInfo]],
          ),
          to: '10.77.0.1',
          port: 67,
        },
      ],
    });
    assert.equal(got.length, 1, 'one OFFER came back to the relay');
    const offer = decodePacket(Buffer.from(got[0]!.hex, 'hex'));
    assert.match(intToIp(offer.yiaddr), /^10\.78\.0\.1\d\d$/);
    assert.equal(intToIp(offer.giaddr), '10.78.0.1');
    assert.deepEqual(offer.options.get(Opt.RelayAgentInfo), relayInfo);
    assert.equal(intToIp(optIp(offer.options, Opt.Router)!), '10.78.0.1');
    await server.apply(config());
  });

  test('malformed packets are dropped with a debug log and the server keeps answering', async () => {
    const ns = lab.addClient('02:00:00:00:03:01');
    lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.72/24', 'dev', 'eth0']);
    const good = request('02:00:00:00:03:01', MsgType.Discover);
    const goodBytes = Buffer.from(good, 'hex');
    const truncated = goodBytes.subarray(0, 100).toString('hex');
    const badLength = Buffer.concat([
      goodBytes.subarray(0, 240),
      Buffer.from([53, 1, 1, 12, 250, 0x61, 255]),
    ]).toString('hex');
    const overlong = Buffer.concat([
      goodBytes.subarray(0, 240),
      Buffer.from([53, 1, 1, 61, 255, 1]),
    ]).toString('hex');
    const got = lab.raw(ns, {
      bind: { address: '0.0.0.0', port: 68 },
      sends: [truncated, badLength, overlong, good].map((hex) => ({ hex, to: '10.77.0.255', port: 67 })),
    });
    assert.equal(got.length, 1);
    assert.equal(
      decodePacket(Buffer.from(got[0]!.hex, 'hex')).options.get(Opt.MessageType)?.[0],
      MsgType.Offer,
    );
    await until(
      'three debug lines',
      () => server.stderr.filter((l) => l.includes('malformed request dropped')).length >= 3,
    );
  });

  test('proxy mode gives PXE clients a boot file and no address, on 67 and on 4011', async () => {
    const cfg = config();
    cfg.subnets[0]!.proxy_mode = true;
    await server.apply(cfg);
    try {
      const ns = lab.addClient('02:00:00:00:04:01');
      lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.73/24', 'dev', 'eth0']);
      const pxeOpts: Array<[number, Buffer]> = [
        [Opt.VendorClass, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
        [Opt.ClientSystemArch, Buffer.from([0, 0])],
        [Opt.ClientGuid, Buffer.alloc(17, 7)],
      ];
      const mac = '02:00:00:00:04:01';
      const [offer] = lab.raw(ns, {
        bind: { address: '0.0.0.0', port: 68 },
        sends: [{ hex: request(mac, MsgType.Discover, {}, pxeOpts), to: '10.77.0.255', port: 67 }],
      });
      assert.ok(offer, 'proxy OFFER received');
      const p = decodePacket(Buffer.from(offer.hex, 'hex'));
      assert.equal(p.yiaddr, 0, 'no address in proxy mode');
      assert.equal(p.file, 'undionly.kpxe');
      assert.equal(optString(p.options, Opt.VendorClass), 'PXEClient');
      assert.ok(p.options.has(Opt.VendorSpecific));
      assert.deepEqual(p.options.get(Opt.ClientGuid), Buffer.alloc(17, 7));
      // An ordinary client gets nothing from a proxy subnet.
      const none = lab.raw(ns, {
        bind: { address: '0.0.0.0', port: 68 },
        sends: [{ hex: request(mac, MsgType.Discover), to: '10.77.0.255', port: 67 }],
        waitMs: 1000,
      });
      assert.equal(none.length, 0);
      // PXE boot-server request on 4011 after the client got its address elsewhere.
      lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.61/24', 'dev', 'eth0']);
      const [ack] = lab.raw(ns, {
        bind: { address: '10.77.0.61', port: 4011 },
        sends: [
          {
            hex: request(mac, MsgType.Request, { ciaddr: ipToInt('10.77.0.61'), flags: 0 }, pxeOpts),
            to: '10.77.0.1',
            port: 4011,
          },
        ],
      });
      assert.ok(ack, 'ACK from the boot-server port');
      const a = decodePacket(Buffer.from(ack.hex, 'hex'));
      assert.equal(a.options.get(Opt.MessageType)?.[0], MsgType.Ack);
      assert.equal(a.file, 'undionly.kpxe');
      assert.equal(a.yiaddr, 0);
    } finally {
      await server.apply(config());
    }
  });

  test('leases survive a restart: INIT-REBOOT is ACKed and the same address offered again', async () => {
    const mac = '02:00:00:00:05:01';
    const ns = lab.addClient(mac);
    const env = lab.udhcpc(ns);
    lab.exec(ns, ['ip', 'addr', 'flush', 'dev', 'eth0']);
    lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.74/24', 'dev', 'eth0']);
    await server.stop();
    server = lab.startServer({ config: config() });
    await server.waitFor((l) => 'ready' in l);
    const [ack] = lab.raw(ns, {
      bind: { address: '0.0.0.0', port: 68 },
      sends: [
        {
          hex: request(mac, MsgType.Request, {}, [
            [Opt.RequestedAddress, Buffer.from(env!.ip!.split('.').map(Number))],
          ]),
          to: '10.77.0.255',
          port: 67,
        },
      ],
    });
    assert.ok(ack, 'the restarted server knows the client');
    const p = decodePacket(Buffer.from(ack.hex, 'hex'));
    assert.equal(p.options.get(Opt.MessageType)?.[0], MsgType.Ack);
    assert.equal(intToIp(p.yiaddr), env!.ip);
    // An INIT-REBOOT from a client the server never saw gets silence (RFC 2131 §4.3.2).
    const silent = lab.raw(ns, {
      bind: { address: '0.0.0.0', port: 68 },
      sends: [
        {
          hex: request('02:00:00:00:05:99', MsgType.Request, {}, [
            [Opt.RequestedAddress, Buffer.from([10, 77, 0, 150])],
          ]),
          to: '10.77.0.255',
          port: 67,
        },
      ],
      waitMs: 1000,
    });
    assert.equal(silent.length, 0);
  });
});

describe('safety', () => {
  test('nothing is served without a managed subnet on a local interface', async () => {
    const lab = new DhcpLab();
    const server = lab.startServer({ config: { subnets: [] } });
    try {
      const ready = await server.waitFor((l) => 'ready' in l);
      assert.deepEqual(ready.ports, []);
      // A subnet this rack has no interface in is not served either.
      await server.apply(labConfig({ cidr: '10.99.0.0/24', gateway: null, dynamic_ranges: [] }));
      const ns = lab.addClient('02:00:00:00:06:01');
      lab.exec(ns, ['ip', 'addr', 'add', '10.77.0.75/24', 'dev', 'eth0']);
      const got = lab.raw(ns, {
        bind: { address: '0.0.0.0', port: 68 },
        sends: [{ hex: request('02:00:00:00:06:01', MsgType.Discover), to: '10.77.0.255', port: 67 }],
        waitMs: 1000,
      });
      assert.equal(got.length, 0);
    } finally {
      await server.stop();
      lab.close();
    }
  });

  test('an interface whose link comes up after the configuration is served without a new one', async () => {
    const lab = new DhcpLab();
    // A bridge that is down is invisible to the interface list, like a lab bridge whose only port
    // is a tap QEMU has not opened yet.
    lab.exec(lab.serverNs, ['ip', 'link', 'set', 'kbr', 'down']);
    const server = lab.startServer({ config: labConfig() });
    try {
      const ready = await server.waitFor((l) => 'ready' in l);
      assert.deepEqual(ready.ports, []);
      const ns = lab.addClient('02:00:00:00:07:01');
      lab.exec(lab.serverNs, ['ip', 'link', 'set', 'kbr', 'up']);
      // udhcpc tries 4 times a second apart; the rack looks at its interfaces every 2 s.
      let lease: Record<string, string> | null = null;
      for (let i = 0; i < 5 && !lease; i++) lease = lab.udhcpc(ns);
      assert.ok(lease, 'no lease once the link came up');
      assert.match(lease.ip ?? '', /^10\.77\.0\./);
    } finally {
      await server.stop();
      lab.close();
    }
  });

  test('another DHCP server on the link makes the rack refuse the subnet with an event', async () => {
    const lab = new DhcpLab();
    try {
      const rogue = lab.addClient('02:00:00:00:07:01');
      lab.exec(rogue, ['ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'eth0']);
      // Kea as the other server (busybox udhcpd cannot open its packet socket in these namespaces).
      const conf = join(lab.dir, 'kea.json');
      writeFileSync(
        conf,
        JSON.stringify({
          Dhcp4: {
            'interfaces-config': { interfaces: ['eth0'] },
            'lease-database': { type: 'memfile', persist: false },
            subnet4: [{ id: 1, subnet: '10.77.0.0/24', pools: [{ pool: '10.77.0.20 - 10.77.0.30' }] }],
          },
        }),
      );
      lab.spawn(rogue, ['kea-dhcp4', '-c', conf], { KEA_LOCKFILE_DIR: lab.dir, KEA_PIDFILE_DIR: lab.dir });
      await until('kea listening', () => /:67\b/.test(lab.exec(rogue, ['ss', '-lun']).stdout));
      const server = lab.startServer({ config: labConfig(), probeTimeoutMs: 1500 });
      try {
        const ev = await server.waitFor(
          (l) => (l.event as { type?: string } | undefined)?.type === 'dhcp.rogue_server',
        );
        assert.match(JSON.stringify(ev), /10\.77\.0\.2/);
        const ready = await server.waitFor((l) => 'ready' in l);
        assert.deepEqual(ready.ports, [], 'the subnet is not served');
      } finally {
        await server.stop();
      }
    } finally {
      lab.close();
    }
  });
});
