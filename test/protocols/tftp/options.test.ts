import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ackedBlock, blockCount, wireBlock } from '../../../src/protocols/tftp/blocks.js';
import { fromNetascii, toNetascii } from '../../../src/protocols/tftp/netascii.js';
import { DEFAULT_LIMITS, negotiate } from '../../../src/protocols/tftp/options.js';

const opts = (s: string) =>
  s
    .split(' ')
    .filter(Boolean)
    .map((kv) => {
      const [name, value] = kv.split('=');
      return { name: name!, value: value! };
    });

test('no options: RFC 1350 defaults and no OACK', () => {
  assert.deepEqual(negotiate([], DEFAULT_LIMITS, 1000), {
    blksize: 512,
    windowsize: 1,
    timeoutMs: undefined,
    oack: [],
  });
});

test('iPXE blksize=1432 tsize=0 gets both back with the size', () => {
  const n = negotiate(opts('blksize=1432 tsize=0'), DEFAULT_LIMITS, 70_000);
  assert.equal(n.blksize, 1432);
  assert.deepEqual(n.oack, opts('blksize=1432 tsize=70000'));
});

test('OVMF tsize=0 blksize=1468 windowsize=4 is accepted in its order', () => {
  const n = negotiate(opts('tsize=0 blksize=1468 windowsize=4'), DEFAULT_LIMITS, 5);
  assert.equal(n.windowsize, 4);
  assert.deepEqual(n.oack, opts('tsize=5 blksize=1468 windowsize=4'));
});

test('names are case-insensitive and echoed in the client spelling; unknown options are left out', () => {
  const n = negotiate(opts('BlkSize=1024 multicast=x TIMEOUT=3'), DEFAULT_LIMITS, 1);
  assert.equal(n.blksize, 1024);
  assert.equal(n.timeoutMs, 3000);
  assert.deepEqual(n.oack, opts('BlkSize=1024 TIMEOUT=3'));
});

test('out-of-range values are left out, too-large ones answered smaller', () => {
  const n = negotiate(opts('blksize=7 timeout=0 windowsize=0 tsize=x'), DEFAULT_LIMITS, 1);
  assert.deepEqual(n, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: [] });
  assert.equal(negotiate(opts('timeout=256'), DEFAULT_LIMITS, 1).oack.length, 0);
  const big = negotiate(opts('blksize=99999 windowsize=65535'), DEFAULT_LIMITS, 1);
  assert.equal(big.blksize, 65464);
  // 1 MiB in flight at most: 16 blocks of 65464.
  assert.equal(big.windowsize, 16);
  assert.deepEqual(big.oack, opts('blksize=65464 windowsize=16'));
  const limited = negotiate(opts('blksize=1468 windowsize=200'), { ...DEFAULT_LIMITS, maxBlksize: 1024 }, 1);
  assert.deepEqual(limited.oack, opts('blksize=1024 windowsize=64'));
});

test('an option given twice counts once, first value wins', () => {
  assert.equal(negotiate(opts('blksize=1024 blksize=2048'), DEFAULT_LIMITS, 1).blksize, 1024);
});

test('block numbers wrap from 65535 to 0 and ACKs map back into the window', () => {
  assert.equal(blockCount(0, 512), 1);
  assert.equal(blockCount(512, 512), 2);
  assert.equal(blockCount(513, 512), 2);
  assert.equal(wireBlock(65535), 65535);
  assert.equal(wireBlock(65536), 0);
  assert.equal(wireBlock(65537), 1);
  // Window 65530..65540 outstanding, base 65530.
  assert.equal(ackedBlock(65535, 65530, 65540), 65535);
  assert.equal(ackedBlock(0, 65530, 65540), 65536);
  assert.equal(ackedBlock(4, 65530, 65540), 65540);
  assert.equal(ackedBlock(65530, 65530, 65540), 65530);
  assert.equal(ackedBlock(5, 65530, 65540), undefined);
  assert.equal(ackedBlock(65529, 65530, 65540), undefined);
});

test('netascii: LF becomes CR LF, CR becomes CR NUL, and back', () => {
  assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c'));
  assert.deepEqual(fromNetascii(Buffer.from('a\r\nb\r\0c')), Buffer.from('a\nb\rc'));
  assert.deepEqual(toNetascii(Buffer.from('plain')), Buffer.from('plain'));
});
