import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeError } from '../../../src/lib/errors.js';
import {
  decodePacket,
  encodeData,
  encodeError,
  encodePacket,
  Opcode,
} from '../../../src/protocols/tftp/packet.js';

/** Bytes as firmware puts them on the wire, written out so a reader can check them by eye. */
function bytes(...parts: (string | number[])[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

// iPXE (BIOS undionly.kpxe and EFI builds) asks for its next file with blksize 1432 and tsize 0.
const IPXE_RRQ = bytes([0, 1], 'undionly.kpxe\0octet\0blksize\x001432\0tsize\x000\0');
// OVMF's PXE first probes the size (tsize 0, blksize 1468, windowsize 4) then aborts after the OACK.
const OVMF_RRQ = bytes([0, 1], 'grubx64.efi\0octet\0tsize\x000\0blksize\x001468\0windowsize\x004\0');
// tftp-hpa's client: no options, netascii unless told -m binary.
const HPA_RRQ = bytes([0, 1], 'pxelinux.cfg/default\0netascii\0');

test('iPXE request decodes and re-encodes to the same bytes', () => {
  const p = decodePacket(IPXE_RRQ);
  assert.deepEqual(p, {
    op: Opcode.RRQ,
    filename: 'undionly.kpxe',
    mode: 'octet',
    options: [
      { name: 'blksize', value: '1432' },
      { name: 'tsize', value: '0' },
    ],
  });
  assert.deepEqual(encodePacket(p), IPXE_RRQ);
});

test('OVMF request decodes with its three options in order', () => {
  const p = decodePacket(OVMF_RRQ);
  assert.equal(p.op, Opcode.RRQ);
  assert.deepEqual(p.op === Opcode.RRQ && p.options.map((o) => `${o.name}=${o.value}`), [
    'tsize=0',
    'blksize=1468',
    'windowsize=4',
  ]);
  assert.deepEqual(encodePacket(p), OVMF_RRQ);
});

test('tftp-hpa request without options', () => {
  assert.deepEqual(decodePacket(HPA_RRQ), {
    op: Opcode.RRQ,
    filename: 'pxelinux.cfg/default',
    mode: 'netascii',
    options: [],
  });
});

test('zero padding after a request is tolerated, other trailing bytes are not', () => {
  const padded = Buffer.concat([IPXE_RRQ, Buffer.alloc(20)]);
  assert.deepEqual(decodePacket(padded), decodePacket(IPXE_RRQ));
  assert.throws(() => decodePacket(Buffer.concat([IPXE_RRQ, Buffer.from([0, 0, 7])])), DecodeError);
});

test('WRQ decodes as a write request', () => {
  const p = decodePacket(bytes([0, 2], 'upload.bin\0octet\0'));
  assert.equal(p.op, Opcode.WRQ);
});

test('DATA, ACK, ERROR and OACK golden bytes', () => {
  const data = bytes([0, 3, 0xff, 0xff], 'hello');
  const d = decodePacket(data);
  assert.equal(d.op, Opcode.DATA);
  assert.equal(d.op === Opcode.DATA && d.block, 65535);
  assert.deepEqual(d.op === Opcode.DATA && Buffer.from(d.data), Buffer.from('hello'));
  assert.deepEqual(encodeData(65535, Buffer.from('hello')), data);
  assert.deepEqual(encodeData(0, new Uint8Array(0)), Buffer.from([0, 3, 0, 0]));

  assert.deepEqual(decodePacket(Buffer.from([0, 4, 1, 2])), { op: Opcode.ACK, block: 0x102 });
  assert.deepEqual(encodePacket({ op: Opcode.ACK, block: 0x102 }), Buffer.from([0, 4, 1, 2]));

  const err = bytes([0, 5, 0, 8], 'User aborted the transfer\0');
  assert.deepEqual(decodePacket(err), { op: Opcode.ERROR, code: 8, message: 'User aborted the transfer' });
  assert.deepEqual(encodeError(8, 'User aborted the transfer'), err);

  const oack = bytes([0, 6], 'tsize\x00123456\0blksize\x001468\0');
  assert.deepEqual(decodePacket(oack), {
    op: Opcode.OACK,
    options: [
      { name: 'tsize', value: '123456' },
      { name: 'blksize', value: '1468' },
    ],
  });
  assert.deepEqual(
    encodePacket({
      op: Opcode.OACK,
      options: [
        { name: 'tsize', value: '123456' },
        { name: 'blksize', value: '1468' },
      ],
    }),
    oack,
  );
});

test('an ERROR whose message lacks its terminator still reads as an error', () => {
  assert.deepEqual(decodePacket(bytes([0, 5, 0, 1], 'nope')), { op: Opcode.ERROR, code: 1, message: 'nope' });
  assert.deepEqual(decodePacket(Buffer.from([0, 5, 0, 0])), { op: Opcode.ERROR, code: 0, message: '' });
});

test('malformed packets give DecodeError with a reason', () => {
  const bad: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0])],
    ['unknown opcode 0', Buffer.from([0, 0, 0, 0])],
    ['unknown opcode 7', Buffer.from([0, 7, 0, 0])],
    ['filename unterminated', bytes([0, 1], 'file')],
    ['empty filename', bytes([0, 1], '\0octet\0')],
    ['mode missing', bytes([0, 1], 'file\0')],
    ['mode unterminated', bytes([0, 1], 'file\0oct')],
    ['empty mode', bytes([0, 1], 'file\0\0')],
    ['option without value', bytes([0, 1], 'file\0octet\0blksize\0')],
    ['option value unterminated', bytes([0, 1], 'file\0octet\0blksize\x001432')],
    ['invalid UTF-8 filename', bytes([0, 1], [0xc3, 0x28], '\0octet\0')],
    ['ACK truncated', Buffer.from([0, 4, 1])],
    ['ACK with trailing bytes', Buffer.from([0, 4, 0, 1, 0])],
    ['DATA truncated', Buffer.from([0, 3, 0])],
    ['ERROR truncated', Buffer.from([0, 5, 0])],
    ['ERROR with bytes after terminator', bytes([0, 5, 0, 1], 'x\0y')],
    ['OACK empty', Buffer.from([0, 6])],
    ['DATA over the largest block', Buffer.concat([Buffer.from([0, 3, 0, 1]), Buffer.alloc(65465)])],
  ];
  for (const [what, buf] of bad) {
    assert.throws(() => decodePacket(buf), DecodeError, what);
  }
});

test('encoders refuse values that cannot go on the wire', () => {
  assert.throws(() => encodeData(65536, new Uint8Array(0)), RangeError);
  assert.throws(() => encodePacket({ op: Opcode.ACK, block: -1 }), RangeError);
  assert.throws(
    () => encodePacket({ op: Opcode.RRQ, filename: 'a\0b', mode: 'octet', options: [] }),
    RangeError,
  );
  assert.throws(() => encodePacket({ op: Opcode.OACK, options: [] }), RangeError);
  // A NUL in our own error message would cut it short: it is dropped.
  assert.deepEqual(decodePacket(encodeError(0, 'a\0b')), { op: Opcode.ERROR, code: 0, message: 'ab' });
});
