import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecodeError } from '../../../src/lib/errors.js';
import { ipToInt } from '../../../src/lib/ipv4.js';
import {
  clientMessageType,
  MsgType,
  replyDestination,
  requestState,
} from '../../../src/protocols/dhcp4/message.js';
import { decodeSubOptions, Opt, optIp, optString } from '../../../src/protocols/dhcp4/options.js';
import {
  BOOTREPLY,
  BOOTREQUEST,
  type DhcpPacket,
  decodePacket,
  EncodeError,
  encodePacket,
  FLAG_BROADCAST,
} from '../../../src/protocols/dhcp4/packet.js';
import { decodeUserClass, encodeUserClass } from '../../../src/protocols/dhcp4/user-class.js';
import { classifyBootClient } from '../../../src/protocols/pxe/classify.js';
import { capturedPackets, FIXTURES, readable } from './fixtures.js';

function packet(over: Partial<DhcpPacket> = {}): DhcpPacket {
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x12345678,
    secs: 0,
    flags: 0,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: Buffer.concat([Buffer.from('525400aabbcc', 'hex'), Buffer.alloc(10)]),
    sname: '',
    file: '',
    options: new Map([[Opt.MessageType, Buffer.from([MsgType.Discover])]]),
    ...over,
  };
}

test('captured client messages decode to their golden files and round-trip', () => {
  const all = capturedPackets();
  assert.ok(all.length >= 6, 'udhcpc, dhclient, iPXE and OVMF captures are present');
  for (const { name, bytes } of all) {
    const p = decodePacket(bytes);
    const golden = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
    assert.deepEqual(readable(p), golden, name);
    const again = decodePacket(encodePacket(p));
    assert.deepEqual(readable(again), golden, `${name} re-encoded`);
  }
});

test('real firmware is classified as the REFERENCE.md table says', () => {
  const kinds = Object.fromEntries(
    capturedPackets().map(({ name, bytes }) => {
      const c = classifyBootClient(decodePacket(bytes).options);
      return [name, `${c.kind}/${c.arch?.firmware ?? '-'}/${c.arch?.code ?? '-'}`];
    }),
  );
  assert.deepEqual(kinds, {
    'dhclient-discover': 'none/-/-',
    'ipxe-bios-discover': 'ipxe/bios/0',
    'ovmf-http-discover': 'uefi-http/uefi-http/16',
    'ovmf-pxe-discover': 'pxe/uefi/7',
    'udhcpc-discover': 'none/-/-',
    'udhcpc-pxe-discover': 'pxe/bios/0',
  });
});

test('options longer than 255 bytes are split on encode and concatenated on decode (RFC 3396)', () => {
  const long = Buffer.alloc(600, 0x61);
  const p = packet({
    options: new Map([
      [Opt.MessageType, Buffer.from([1])],
      [Opt.BootfileName, long],
    ]),
  });
  const bytes = encodePacket(p);
  // three instances of option 67: 255 + 255 + 90
  let instances = 0;
  for (let i = 240; i < bytes.length && bytes[i] !== 255; i += 2 + bytes[i + 1]!)
    if (bytes[i] === 67) instances++;
  assert.equal(instances, 3);
  assert.deepEqual(decodePacket(bytes).options.get(Opt.BootfileName), long);
});

test('overloaded file and sname fields are read as options, file first (RFC 2131 §4.1)', () => {
  const bytes = encodePacket(
    packet({
      options: new Map([
        [Opt.MessageType, Buffer.from([1])],
        [Opt.Overload, Buffer.from([3])],
      ]),
    }),
  );
  Buffer.from([Opt.HostName, 2, 0x61, 0x62, 255]).copy(bytes, 108);
  Buffer.from([Opt.HostName, 1, 0x63, 255]).copy(bytes, 44);
  const p = decodePacket(bytes);
  assert.equal(optString(p.options, Opt.HostName), 'abc');
  assert.equal(p.file, '');
  assert.equal(p.sname, '');
});

test('malformed messages give DecodeError', () => {
  const good = encodePacket(packet());
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['truncated header', good.subarray(0, 200)],
    ['no cookie', Buffer.concat([good.subarray(0, 236), Buffer.from([1, 2, 3, 4, 255])])],
    ['bad op', Buffer.from(good).fill(9, 0, 1)],
    ['hlen 17', Buffer.from(good).fill(17, 2, 3)],
    [
      'option runs past the end',
      Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 12, 200, 0x61])]),
    ],
    ['option without length', Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 12])])],
    ['message type of 2 bytes', Buffer.concat([good.subarray(0, 240), Buffer.from([53, 2, 1, 1, 255])])],
    ['bad overload', Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 52, 1, 7, 255])])],
  ];
  for (const [name, b] of cases) assert.throws(() => decodePacket(b), DecodeError, name);
});

test('option accessors check lengths', () => {
  const p = decodePacket(
    encodePacket(
      packet({
        options: new Map([
          [Opt.MessageType, Buffer.from([1])],
          [Opt.ServerId, Buffer.from([1, 2, 3])],
        ]),
      }),
    ),
  );
  assert.throws(() => optIp(p.options, Opt.ServerId), DecodeError);
});

test('encode refuses a reply larger than the client accepts', () => {
  const p = packet({
    options: new Map([
      [Opt.MessageType, Buffer.from([2])],
      [Opt.BootfileName, Buffer.alloc(400)],
    ]),
  });
  assert.throws(() => encodePacket(p, 548), EncodeError);
  assert.ok(encodePacket(p, 1472).length > 548);
});

test('user class: raw iPXE and RFC 3004 lists', () => {
  assert.deepEqual(decodeUserClass(Buffer.from('iPXE')), ['iPXE']);
  assert.deepEqual(decodeUserClass(encodeUserClass(['iPXE', 'foo'])), ['iPXE', 'foo']);
  assert.deepEqual(decodeUserClass(Buffer.from([4, 0x61])), ['\x04a']);
});

test('sub-options (43, 82, 175) decode and reject bad lengths', () => {
  assert.deepEqual(decodeSubOptions(Buffer.from([1, 2, 9, 9, 255])).get(1), Buffer.from([9, 9]));
  assert.throws(() => decodeSubOptions(Buffer.from([1, 5, 9])), DecodeError);
});

test('REQUEST states follow RFC 2131 §4.3.2', () => {
  const sid = Buffer.from([10, 0, 0, 1]);
  const req = Buffer.from([10, 0, 0, 50]);
  const mt = Buffer.from([MsgType.Request]);
  const st = (o: Array<[number, Buffer]>, over: Partial<DhcpPacket> = {}) =>
    requestState(packet({ options: new Map([[Opt.MessageType, mt], ...o]), ...over }));
  assert.equal(
    st([
      [Opt.ServerId, sid],
      [Opt.RequestedAddress, req],
    ]),
    'selecting',
  );
  assert.equal(st([[Opt.RequestedAddress, req]]), 'init-reboot');
  assert.equal(st([], { ciaddr: ipToInt('10.0.0.50') }), 'renewing');
  assert.equal(st([], { ciaddr: ipToInt('10.0.0.50'), flags: FLAG_BROADCAST }), 'rebinding');
  assert.throws(() => st([]), DecodeError);
});

test('client message rules drop server messages and BOOTP', () => {
  assert.throws(() => clientMessageType(packet({ op: BOOTREPLY })), DecodeError);
  assert.throws(() => clientMessageType(packet({ options: new Map() })), DecodeError);
  assert.throws(
    () => clientMessageType(packet({ options: new Map([[53, Buffer.from([MsgType.Offer])]]) })),
    DecodeError,
  );
  assert.equal(clientMessageType(packet()), MsgType.Discover);
});

test('reply addressing follows RFC 2131 §4.1', () => {
  const relay = ipToInt('10.1.0.1');
  assert.deepEqual(replyDestination(packet({ giaddr: relay }), MsgType.Offer), {
    address: relay,
    port: 67,
    broadcast: false,
  });
  assert.deepEqual(replyDestination(packet({ ciaddr: 5 }), MsgType.Ack), {
    address: 5,
    port: 68,
    broadcast: false,
  });
  assert.deepEqual(replyDestination(packet({ ciaddr: 5 }), MsgType.Nak), {
    address: 0xffffffff,
    port: 68,
    broadcast: true,
  });
  assert.equal(replyDestination(packet({ flags: FLAG_BROADCAST }), MsgType.Offer).broadcast, true);
  // no ARP entry for an unconfigured client: broadcast instead of unicast to yiaddr
  assert.equal(replyDestination(packet(), MsgType.Offer).broadcast, true);
});

function onlyDecodeErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
}

function everything(bytes: Uint8Array): void {
  const p = decodePacket(bytes);
  onlyDecodeErrors(() => clientMessageType(p));
  onlyDecodeErrors(() => requestState(p));
  onlyDecodeErrors(() => classifyBootClient(p.options));
  try {
    decodePacket(encodePacket(p));
  } catch (err) {
    if (!(err instanceof EncodeError)) throw err;
  }
}

test('fuzz: random bytes only ever give a DecodeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 700 }), (b) => onlyDecodeErrors(() => everything(b))),
    { numRuns: 3000 },
  );
});

test('fuzz: mutated real packets only ever give a DecodeError', () => {
  const seeds = capturedPackets().map((c) => c.bytes);
  fc.assert(
    fc.property(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat()),
      (seed, edits, cut) => {
        const b = Buffer.from(seed);
        for (const [at, v] of edits) b[240 + (at % Math.max(1, b.length - 240))] = v;
        const input = cut === null ? b : b.subarray(0, cut % (b.length + 1));
        onlyDecodeErrors(() => everything(input));
      },
    ),
    { numRuns: 5000 },
  );
});

test('fuzz: a valid header with random option bytes only ever gives a DecodeError', () => {
  const head = capturedPackets()[0]!.bytes.subarray(0, 240);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (tail) =>
      onlyDecodeErrors(() => everything(Buffer.concat([head, tail]))),
    ),
    { numRuns: 3000 },
  );
});
