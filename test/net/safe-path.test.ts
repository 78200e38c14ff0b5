import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveUnderRoot } from '../../src/net/safe-path.js';

const top = mkdtempSync(join(tmpdir(), 'kiln-safe-'));
const root = join(top, 'root');
mkdirSync(join(root, 'pxelinux.cfg'), { recursive: true });
writeFileSync(join(root, 'undionly.kpxe'), 'x');
writeFileSync(join(root, 'pxelinux.cfg', 'default'), 'y');
writeFileSync(join(top, 'secret'), 's');
symlinkSync(join(top, 'secret'), join(root, 'escape'));
symlinkSync(join(root, 'undionly.kpxe'), join(root, 'inside-link'));

test('files under root resolve, with or without a leading slash', async () => {
  assert.equal((await resolveUnderRoot(root, 'undionly.kpxe')).path, join(root, 'undionly.kpxe'));
  assert.equal(
    (await resolveUnderRoot(root, '/pxelinux.cfg/default')).path,
    join(root, 'pxelinux.cfg', 'default'),
  );
  assert.equal((await resolveUnderRoot(root, 'inside-link')).path, join(root, 'undionly.kpxe'));
});

test('traversal, encoded dots, NUL, backslashes and escaping symlinks are refused', async () => {
  for (const bad of [
    '../secret',
    '/../secret',
    'pxelinux.cfg/../../secret',
    '%2e%2e/secret',
    '..%2fsecret',
    'undionly.kpxe\0.cfg',
    '..\\secret',
    'escape',
  ]) {
    const r = await resolveUnderRoot(root, bad);
    assert.equal(r.path, null, bad);
    assert.equal('refused' in r && r.refused, true, bad);
  }
});

test('a missing file is not found, not refused', async () => {
  const r = await resolveUnderRoot(root, 'nope.efi');
  assert.deepEqual(r, { path: null, refused: false });
});
