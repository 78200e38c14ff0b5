import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { isKilnError } from '../../src/lib/errors.js';
import { FileMismatchError, FileTooLargeError, writeVerifiedFile } from '../../src/lib/verified-file.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const top = mkdtempSync(join(tmpdir(), 'kiln-verified-'));
after(() => rmSync(top, { recursive: true, force: true }));

function dirs(): { tmpDir: string; destDir: string } {
  const destDir = mkdtempSync(join(top, 'd-'));
  const tmpDir = join(destDir, 'tmp');
  mkdirSync(tmpDir);
  return { tmpDir, destDir };
}

/** Yields the chunks, then fails like a connection that drops mid-body. */
function cutStream(chunks: Buffer[]): Readable {
  return Readable.from(
    (async function* () {
      for (const c of chunks) yield c;
      throw new Error('connection reset');
    })(),
  );
}

test('a stream is stored under its sha256, hashed and counted, with chunks reported', async () => {
  const d = dirs();
  const payload = randomBytes(3 * 1024 * 1024 + 5);
  const src = join(top, 'payload');
  writeFileSync(src, payload);
  const seen: number[] = [];
  const got = await writeVerifiedFile(createReadStream(src, { highWaterMark: 64 * 1024 }), {
    ...d,
    tmpPrefix: 'me-',
    sha256: sha(payload),
    size: payload.length,
    maxBytes: payload.length,
    onChunk: (n) => seen.push(n),
  });
  assert.deepEqual(got, { sha256: sha(payload), size: payload.length, path: join(d.destDir, sha(payload)) });
  assert.ok(readFileSync(got.path).equals(payload));
  assert.ok(seen.length > 1);
  assert.equal(seen.at(-1), payload.length);
  assert.deepEqual(
    seen,
    [...seen].sort((a, b) => a - b),
  );
  assert.deepEqual(readdirSync(d.tmpDir), []);
  // Without expectations the content names itself.
  const empty = await writeVerifiedFile(Readable.from([]), d);
  assert.equal(empty.sha256, sha(Buffer.alloc(0)));
  assert.equal(empty.size, 0);
});

test('a wrong sha256 or size is refused with both sides named; nothing is kept', async () => {
  const d = dirs();
  const payload = Buffer.from('a kernel, honestly');
  const wrong = 'ab'.repeat(32);
  await assert.rejects(writeVerifiedFile(Readable.from([payload]), { ...d, sha256: wrong }), (err) => {
    assert.ok(err instanceof FileMismatchError);
    assert.equal(err.code, 'KILN_ERR_FILE_MISMATCH');
    assert.deepEqual(err.actual, { sha256: sha(payload), size: payload.length });
    assert.equal(err.expected.sha256, wrong);
    return true;
  });
  await assert.rejects(
    writeVerifiedFile(Readable.from([payload]), { ...d, sha256: sha(payload), size: payload.length + 1 }),
    (err) => isKilnError(err, 'KILN_ERR_FILE_MISMATCH'),
  );
  assert.deepEqual(readdirSync(d.destDir), ['tmp']);
  assert.deepEqual(readdirSync(d.tmpDir), []);
});

test('past maxBytes the write stops with FileTooLargeError; nothing is kept', async () => {
  const d = dirs();
  let produced = 0;
  // An endless source: the limit, not the end of the data, must stop it.
  const endless = new Readable({
    read() {
      produced += 1024;
      this.push(Buffer.alloc(1024, 7));
    },
  });
  await assert.rejects(writeVerifiedFile(endless, { ...d, maxBytes: 10_000 }), (err) => {
    assert.ok(err instanceof FileTooLargeError);
    assert.equal(err.code, 'KILN_ERR_FILE_TOO_LARGE');
    assert.equal(err.maxBytes, 10_000);
    return true;
  });
  assert.ok(produced < 1024 * 1024);
  assert.ok(endless.destroyed);
  assert.deepEqual(readdirSync(d.destDir), ['tmp']);
  assert.deepEqual(readdirSync(d.tmpDir), []);
});

test('a source error or an abort passes through as thrown; nothing is kept', async () => {
  const d = dirs();
  await assert.rejects(writeVerifiedFile(cutStream([Buffer.alloc(5000)]), d), /connection reset/);
  const ac = new AbortController();
  const reason = new Error('operator gave up');
  const slow = new Readable({ read() {} });
  slow.push(Buffer.alloc(100));
  const p = writeVerifiedFile(slow, { ...d, signal: ac.signal, onChunk: () => ac.abort(reason) });
  await assert.rejects(p, (err: Error) => err.name === 'AbortError' || err === reason);
  assert.ok(ac.signal.aborted);
  assert.deepEqual(readdirSync(d.destDir), ['tmp']);
  assert.deepEqual(readdirSync(d.tmpDir), []);
});

test('a missing temp directory is an fs error, and the source is released', async () => {
  const d = dirs();
  const src = new Readable({ read() {} });
  await assert.rejects(writeVerifiedFile(src, { ...d, tmpDir: join(d.destDir, 'nope') }), {
    code: 'ENOENT',
  });
  assert.ok(src.destroyed);
  assert.deepEqual(readdirSync(d.destDir), ['tmp']);
});

test('any chunking of any bytes stores exactly those bytes, under their sha256', async () => {
  const d = dirs();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), async (parts) => {
      const chunks = parts.map((p) => Buffer.from(p));
      const all = Buffer.concat(chunks);
      const got = await writeVerifiedFile(Readable.from(chunks), {
        ...d,
        sha256: sha(all),
        size: all.length,
      });
      assert.equal(got.sha256, sha(all));
      assert.ok(readFileSync(got.path).equals(all));
      assert.deepEqual(readdirSync(d.tmpDir), []);
    }),
    { numRuns: 50 },
  );
});
