import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/lib/logger.js';
import { ensureRegionSecrets, readRegionSecrets } from '../../src/region/secrets.js';

test('secrets and the CA are made under a relative data_dir too, private, and kept on a second run', async () => {
  const top = mkdtempSync(join(tmpdir(), 'kiln-secrets-'));
  const cwd = process.cwd();
  try {
    process.chdir(top);
    const first = await ensureRegionSecrets('rel/.kiln', silentLogger);
    assert.ok(first.created.length > 0);
    const s = readRegionSecrets('rel/.kiln');
    assert.equal(s.secret.length, 32);
    assert.equal(statSync(join(top, 'rel/.kiln/secret')).mode & 0o777, 0o600);
    const again = await ensureRegionSecrets('rel/.kiln', silentLogger);
    assert.deepEqual(again.created, []);
    assert.deepEqual(readRegionSecrets('rel/.kiln').secret, s.secret);
  } finally {
    process.chdir(cwd);
    rmSync(top, { recursive: true, force: true });
  }
});
