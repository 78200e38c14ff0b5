import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecodeError, KilnError } from '../../src/lib/errors.js';
import { PATH_REFUSED } from '../../src/net/tftp-root-resolver.js';
import {
  errorForWire,
  MAX_CONTENT,
  MAX_PATH,
  parseMainMessage,
  parseWorkerMessage,
  remoteError,
} from '../../src/rack/worker-ipc.js';

const req = {
  path: '/boot/52-54-00-00-00-01.ipxe',
  protocol: 'http',
  remoteAddress: '10.0.0.5',
  remotePort: 40000,
  localAddress: '10.0.0.1',
};

test('messages that are not the rack workers’ are ignored, not rejected', () => {
  for (const m of [
    null,
    undefined,
    'rack-resolve',
    7,
    {},
    { kiln: 'ready' },
    { kiln: 'metrics-collect', id: 'x' },
  ]) {
    assert.equal(parseWorkerMessage(m), null);
    assert.equal(parseMainMessage(m), null);
  }
});

test('a worker’s lookup is validated field by field', () => {
  assert.deepEqual(parseWorkerMessage({ kiln: 'rack-resolve', id: 3, req }), {
    kiln: 'rack-resolve',
    id: 3,
    req,
  });
  const bad: unknown[] = [
    { kiln: 'rack-resolve', id: 3 },
    { kiln: 'rack-resolve', id: -1, req },
    { kiln: 'rack-resolve', id: 1.5, req },
    { kiln: 'rack-resolve', id: 3, req: { ...req, protocol: 'ftp' } },
    { kiln: 'rack-resolve', id: 3, req: { ...req, remotePort: 70000 } },
    { kiln: 'rack-resolve', id: 3, req: { ...req, path: 'x'.repeat(MAX_PATH + 1) } },
    { kiln: 'rack-resolve', id: 3, req: { ...req, path: 42 } },
    { kiln: 'rack-ready', index: 0, tftp: null, http: null },
    {
      kiln: 'rack-stats',
      id: 1,
      stats: { tftp: null, http: { requests: 1, bytes: 0, aborted: 0, byStatus: { abc: 1 } } },
    },
    { kiln: 'rack-launch-missiles' },
  ];
  for (const m of bad)
    assert.throws(() => parseWorkerMessage(m), DecodeError, JSON.stringify(m).slice(0, 120));
});

test('an answer from the main process: content bytes come back as a Buffer, errors keep their code', () => {
  const body = new Uint8Array([35, 33, 105, 112, 120, 101]); // what structured clone delivers
  const m = parseMainMessage({
    kiln: 'rack-resolved',
    id: 9,
    source: { kind: 'content', body, contentType: 'text/plain' },
  });
  assert.ok(m && m.kiln === 'rack-resolved' && 'source' in m && m.source?.kind === 'content');
  assert.ok(Buffer.isBuffer(m.source.body));
  assert.equal(m.source.body.toString(), '#!ipxe');

  assert.deepEqual(parseMainMessage({ kiln: 'rack-resolved', id: 9, source: null }), {
    kiln: 'rack-resolved',
    id: 9,
    source: null,
  });
  assert.throws(() => parseMainMessage({ kiln: 'rack-resolved', id: 9 }), DecodeError);
  assert.throws(
    () =>
      parseMainMessage({
        kiln: 'rack-resolved',
        id: 9,
        source: { kind: 'content', body: new Uint8Array(MAX_CONTENT + 1) },
      }),
    DecodeError,
  );
  assert.throws(
    () => parseMainMessage({ kiln: 'rack-resolved', id: 9, source: { kind: 'file', path: '' } }),
    DecodeError,
  );

  // TFTP answers "access violation" only for PATH_REFUSED: the code must survive the trip.
  const wire = errorForWire(new KilnError(PATH_REFUSED, 'path refused: outside the served root'));
  const back = parseMainMessage({ kiln: 'rack-resolved', id: 1, error: wire });
  assert.ok(back && back.kiln === 'rack-resolved' && 'error' in back);
  const err = remoteError(back.error);
  assert.equal(err.code, PATH_REFUSED);
  assert.equal(errorForWire(new TypeError('boom')).code, 'KILN_ERR_INTERNAL');
});

test('a start message checks the parts of the config a worker uses', () => {
  const config = {
    data_dir: '/tmp/x',
    log: { level: 'info' },
    native: { enabled: true },
    rack: { tftp: { enabled: true, host: '0.0.0.0', timeout_ms: 1000, retries: 5 }, http: { host: '::' } },
  };
  const ok = parseMainMessage({ kiln: 'rack-start', index: 2, config, tftpPort: 69, httpPort: 5248 });
  assert.equal(ok?.kiln, 'rack-start');
  assert.throws(
    () =>
      parseMainMessage({
        kiln: 'rack-start',
        index: 2,
        config: { ...config, rack: {} },
        tftpPort: 69,
        httpPort: 5248,
      }),
    DecodeError,
  );
  assert.throws(() => parseMainMessage({ kiln: 'rack-start', index: 2, config, tftpPort: 69 }), DecodeError);
});

test('fuzz: anything received gives a message, null, or a DecodeError — nothing else', () => {
  const rackish = fc.record(
    {
      kiln: fc.constantFrom(
        'rack-start',
        'rack-resolved',
        'rack-stats-request',
        'rack-stop',
        'rack-ready',
        'rack-resolve',
        'rack-stats',
        'rack-x',
      ),
      id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
      index: fc.anything(),
      req: fc.oneof(
        fc.anything(),
        fc.record({
          path: fc.string(),
          protocol: fc.constantFrom('tftp', 'http', 'x'),
          remoteAddress: fc.string(),
          remotePort: fc.integer(),
          localAddress: fc.string(),
        }),
      ),
      source: fc.oneof(
        fc.anything(),
        fc.record({ kind: fc.constantFrom('file', 'content'), path: fc.string(), body: fc.uint8Array() }),
      ),
      error: fc.anything(),
      stats: fc.anything(),
      config: fc.anything(),
      tftp: fc.anything(),
      http: fc.anything(),
    },
    { requiredKeys: ['kiln'] },
  );
  fc.assert(
    fc.property(fc.oneof(fc.anything(), rackish), (m) => {
      for (const parse of [parseWorkerMessage, parseMainMessage]) {
        try {
          parse(m);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
        }
      }
    }),
    { numRuns: 3000 },
  );
});
