import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configReference } from '../../src/config/reference.js';

test("README's configuration table matches the schema (regenerate: npm run -s config:reference)", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme);
  assert.ok(m, 'README has no config-reference markers');
  assert.equal(m[1], configReference());
});
