import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { isKilnError } from '../../src/lib/errors.js';
import {
  type Icmp6Message,
  type Icmp6SocketHandle,
  icmp6Status,
  openIcmp6Socket,
  openIcmp6SocketCount,
} from '../../src/native/index.js';

/**
 * The addon's raw ICMPv6 socket on loopback (::1): what arrives, with which hop limit and sender,
 * what the filter keeps out, and that close() releases it. The namespace tests in test/net drive it
 * on veth with real solicitors.
 */
describe('native: raw ICMPv6 socket', () => {
  const open: Icmp6SocketHandle[] = [];
  after(() => {
    for (const s of open) s.close();
  });

  const receive = (s: Icmp6SocketHandle, n: number) =>
    new Promise<Icmp6Message[]>((resolve, reject) => {
      const got: Icmp6Message[] = [];
      s.start((m) => {
        got.push(m);
        if (got.length === n) resolve(got);
      }, reject);
    });

  test('the addon build has it', () => {
    assert.deepEqual(icmp6Status(), { available: true });
  });

  test('receives only the types it passes, with sender, interface and IP hop limit', async () => {
    const rx = openIcmp6Socket({ ifname: 'lo', passTypes: [133] });
    const tx = openIcmp6Socket({ ifname: 'lo', passTypes: [], hopLimit: 255 });
    const tx64 = openIcmp6Socket({ ifname: 'lo', passTypes: [], hopLimit: 64 });
    open.push(rx, tx, tx64);
    assert.ok(rx.ifindex > 0);
    const got = receive(rx, 2);
    // An echo request (128) is filtered out in the kernel; the two solicitations arrive in order.
    tx.send(Buffer.from('8000000000010001', 'hex'), '::1');
    tx.send(Buffer.from('8500000000000000', 'hex'), '::1');
    tx64.send(Buffer.from('850000000000000001015254000000aa', 'hex'), '::1');
    const [a, b] = await got;
    assert.equal(a!.data[0], 133);
    assert.equal(a!.data.length, 8);
    // The kernel computed the checksum on the way out (RFC 3542 §3.1).
    assert.notEqual(a!.data.readUInt16BE(2), 0);
    assert.equal(a!.from, '::1');
    assert.equal(a!.hopLimit, 255);
    assert.equal(a!.truncated, false);
    assert.equal(b!.hopLimit, 64);
    assert.equal(b!.data.length, 16);
    rx.stop();
  });

  test('a message longer than the read buffer arrives marked truncated', async () => {
    const rx = openIcmp6Socket({ ifname: 'lo', passTypes: [133], maxMessage: 8 });
    const tx = openIcmp6Socket({ ifname: 'lo', passTypes: [] });
    open.push(rx, tx);
    const got = receive(rx, 1);
    tx.send(Buffer.from('850000000000000001015254000000aa', 'hex'), '::1');
    const [m] = await got;
    assert.equal(m!.truncated, true);
    assert.equal(m!.data.length, 8);
  });

  test('bad arguments are ValidationErrors; a missing interface is ENODEV', () => {
    const bad: Array<Parameters<typeof openIcmp6Socket>[0]> = [
      { ifname: '', passTypes: [] },
      { ifname: 'a-name-far-too-long', passTypes: [] },
      { ifname: 'lo', passTypes: [256] },
      { ifname: 'lo', passTypes: [], joinGroups: ['fe80::1'] },
      { ifname: 'lo', passTypes: [], hopLimit: 0 },
    ];
    for (const o of bad) {
      assert.throws(
        () => openIcmp6Socket(o),
        (e: unknown) => isKilnError(e, 'KILN_ERR_VALIDATION'),
      );
    }
    assert.throws(
      () => openIcmp6Socket({ ifname: 'kilnnosuchif0', passTypes: [] }),
      (e: NodeJS.ErrnoException) => e.code === 'ENODEV' && e.syscall === 'if_nametoindex',
    );
  });

  test('close() is idempotent; sending after it is EBADF; no socket leaks', () => {
    const before = openIcmp6SocketCount();
    const s = openIcmp6Socket({ ifname: 'lo', passTypes: [133], joinGroups: ['ff02::2'] });
    assert.equal(openIcmp6SocketCount(), before + 1);
    s.close();
    s.close();
    assert.equal(openIcmp6SocketCount(), before);
    assert.throws(
      () => s.send(Buffer.alloc(8), '::1'),
      (e: NodeJS.ErrnoException) => e.code === 'EBADF',
    );
  });
});
