import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Router from '@koa/router';
import { regionRoutes } from '../../../src/region/http/app.js';
import { createRegionMetrics } from '../../../src/region/http/metrics.js';
import { routesOf } from '../../../src/region/http/openapi.js';
import { createApiKey, revokeApiKey } from '../../../src/storage/api-keys.js';
import { errorOf, jsonOf, startRegion, type TestRegion } from './helpers.js';

describe('auth, health, metrics, OpenAPI, static, plugins', () => {
  let r: TestRegion;
  const plugin = new Router();
  plugin.get('/api/v1/widgets', (ctx) => {
    ctx.body = { items: [], next: null };
  });
  plugin.get('/rpc', (ctx) => {
    ctx.body = { eventloops: {} };
  });
  before(async () => {
    r = await startRegion({
      plugins: [{ router: plugin, openapi: { '/api/v1/widgets': { get: { summary: 'w', responses: {} } } } }],
    });
  });
  after(() => r.close());

  test('no key → 401, bad key → 401, revoked → 403, good → 200', async () => {
    const noKey = await fetch(`${r.base}/api/v1/machines`);
    await errorOf(noKey, 401, 'KILN_ERR_UNAUTHORIZED');
    assert.match(noKey.headers.get('www-authenticate') ?? '', /Bearer/);
    await errorOf(
      await r.api('/api/v1/machines', { headers: { authorization: 'Bearer kiln_nope' } }),
      401,
      'KILN_ERR_UNAUTHORIZED',
    );
    await errorOf(
      await r.api('/api/v1/machines', { headers: { authorization: 'Basic abc' } }),
      401,
      'KILN_ERR_UNAUTHORIZED',
    );
    const { key } = createApiKey(r.db, 'temp');
    assert.equal(
      (await r.api('/api/v1/machines', { headers: { authorization: `Bearer ${key}` } })).status,
      200,
    );
    revokeApiKey(r.db, 'temp');
    const e = await errorOf(
      await r.api('/api/v1/machines', { headers: { authorization: `Bearer ${key}` } }),
      403,
      'KILN_ERR_FORBIDDEN',
    );
    assert.match(e.message, /revoked/);
    // Plugin routes under /api/v1 are guarded too; those outside are public.
    await errorOf(await fetch(`${r.base}/api/v1/widgets`), 401, 'KILN_ERR_UNAUTHORIZED');
    assert.equal((await r.api('/api/v1/widgets')).status, 200);
    assert.equal((await fetch(`${r.base}/rpc`)).status, 200);
  });

  test('keys are stored hashed', () => {
    const { key } = createApiKey(r.db, 'hashcheck');
    const dump = JSON.stringify(r.db.prepare('SELECT * FROM api_keys').all());
    assert.ok(!dump.includes(key));
  });

  test('/healthz answers without a key and checks the database', async () => {
    const res = await fetch(`${r.base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', database: 'ok' });
  });

  test('/metrics: HTTP requests by route, machines by status, process metrics', async () => {
    await r.api('/api/v1/machines', { method: 'POST', json: { status: 'READY' } });
    await r.api('/api/v1/machines?limit=1');
    const text = await (await fetch(`${r.base}/metrics`)).text();
    assert.match(
      text,
      /kiln_http_requests_total\{method="GET",route="\/api\/v1\/machines",status="200"\} \d+/,
    );
    assert.match(
      text,
      /kiln_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/api\/v1\/machines"/,
    );
    assert.match(text, /kiln_machines\{status="READY"\} 1/);
    assert.match(text, /kiln_machines\{status="DEPLOYED"\} 0/);
    assert.match(text, /kiln_process_resident_memory_bytes/);
  });

  test('the UI is served at / without a key', async () => {
    const res = await fetch(`${r.base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /src="\/app.js"/);
    const js = await fetch(`${r.base}/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(await js.text(), /\/api\/v1\/machines\?/);
    assert.equal((await fetch(`${r.base}/app.css`)).status, 200);
    assert.equal((await fetch(`${r.base}/no-such-file.js`)).status, 404);
  });

  test('the OpenAPI document is public and describes every route, plugins included', async () => {
    const res = await fetch(`${r.base}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    const doc = await jsonOf(res);
    assert.equal(doc.openapi, '3.1.0');
    const metrics = createRegionMetrics(r.db, { defaultMetrics: false });
    const routers = [...regionRoutes(r.db, metrics).map((p) => p.router), plugin];
    const missing: string[] = [];
    for (const router of routers) {
      for (const { method, path } of routesOf(router)) {
        if (!path.startsWith('/api/v1/')) continue;
        if (!doc.paths[path]?.[method]) missing.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(doc.paths['/api/v1/machines'].post.requestBody);
    const q = doc.paths['/api/v1/machines'].get.parameters.map((p: { name: string }) => p.name);
    for (const name of ['status', 'hostname', 'mac', 'tag', 'zone', 'pool', 'sort', 'limit', 'cursor'])
      assert.ok(q.includes(name), name);
  });
});

describe('subnets and boot resources API', () => {
  let r: TestRegion;
  before(async () => {
    r = await startRegion();
  });
  after(() => r.close());

  test('subnet CRUD and its errors', async () => {
    const res = await r.api('/api/v1/subnets', {
      method: 'POST',
      json: {
        cidr: '10.5.0.0/24',
        gateway: '10.5.0.1',
        dns_servers: ['10.5.0.1'],
        dynamic_range: { start: '10.5.0.50', end: '10.5.0.99' },
      },
    });
    assert.equal(res.status, 201);
    const s = await jsonOf(res);
    assert.equal(s.cidr, '10.5.0.0/24');
    assert.equal(s.managed, false);
    await errorOf(
      await r.api('/api/v1/subnets', { method: 'POST', json: { cidr: '10.5.0.0/24' } }),
      409,
      'KILN_ERR_CONFLICT',
    );
    const bad = await errorOf(
      await r.api('/api/v1/subnets', { method: 'POST', json: { cidr: '10.5.1.0/33' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    assert.match(bad.message, /^cidr:/);
    const out = await errorOf(
      await r.api(`/api/v1/subnets/${s.id}`, {
        method: 'PATCH',
        json: { dynamic_range: { start: '10.5.0.10', end: '10.6.0.1' } },
      }),
      400,
      'KILN_ERR_VALIDATION',
    );
    assert.match(out.message, /^dynamic_range\.end:/);
    await errorOf(
      await r.api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { rack_id: 99 } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    await errorOf(
      await r.api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { managed: 'yes' } }),
      400,
      'KILN_ERR_VALIDATION',
    );
    const p = await jsonOf(
      await r.api(`/api/v1/subnets/${s.id}`, { method: 'PATCH', json: { proxy_mode: true } }),
    );
    assert.equal(p.proxy_mode, true);
    assert.equal(p.dynamic_range.start, '10.5.0.50');
    const list = await jsonOf(await r.api('/api/v1/subnets?managed=false'));
    assert.equal(list.items.length, 1);
    assert.equal((await r.api(`/api/v1/subnets/${s.id}`, { method: 'DELETE' })).status, 204);
    await errorOf(await r.api(`/api/v1/subnets/${s.id}`), 404, 'KILN_ERR_NOT_FOUND');
    await errorOf(await r.api('/api/v1/subnets/abc'), 404, 'KILN_ERR_NOT_FOUND');
  });

  test('boot resources are read-only and hide store paths', async () => {
    const { putBootResource } = await import('../../../src/storage/boot-resources.js');
    const res = putBootResource(r.db, {
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [
        { name: 'vmlinuz', filetype: 'kernel', sha256: 'a'.repeat(64), size: 5, path: 'images/sha256/aaa' },
      ],
    });
    const one = await jsonOf(await r.api(`/api/v1/boot-resources/${res.id}`));
    assert.equal(one.files[0].sha256, 'a'.repeat(64));
    assert.equal(one.files[0].path, undefined);
    assert.equal(
      (await jsonOf(await r.api('/api/v1/boot-resources?architecture=amd64/generic'))).items.length,
      1,
    );
    await errorOf(
      await r.api('/api/v1/boot-resources', { method: 'POST', json: {} }),
      405,
      'KILN_ERR_METHOD_NOT_ALLOWED',
    );
  });
});
