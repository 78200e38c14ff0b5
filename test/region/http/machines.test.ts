import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { appendEvent } from '../../../src/storage/events.js';
import { createMachine, getMachine } from '../../../src/storage/machines.js';
import { errorOf, jsonOf, startRegion, type TestRegion } from './helpers.js';

describe('machines API', () => {
  let r: TestRegion;
  before(async () => {
    r = await startRegion({ bodyLimit: 4096 });
  });
  after(() => r.close());

  test('create, show, update, delete', async () => {
    const res = await r.api('/api/v1/machines', {
      method: 'POST',
      json: {
        hostname: 'web-01',
        architecture: 'arm64/generic',
        boot_mac: '52:54:00:12:34:56',
        interfaces: [{ name: 'eth1', mac: '52:54:00:12:34:57' }],
        power_type: 'ipmi',
        power_parameters: { power_address: '10.0.0.5', power_user: 'root', power_pass: 'hunter2' },
        tags: ['web'],
        zone: 'z1',
        pool: 'p1',
      },
    });
    assert.equal(res.status, 201);
    const m = await jsonOf(res);
    assert.equal(res.headers.get('location'), `/api/v1/machines/${m.system_id}`);
    assert.equal(m.hostname, 'web-01');
    assert.equal(m.boot_mac, '52:54:00:12:34:56');
    assert.equal(m.power_parameters.power_pass, '********');
    assert.equal(m.power_parameters.power_user, 'root');
    assert.equal(m.id, undefined);
    assert.ok(!JSON.stringify(m).includes('hunter2'));

    const shown = await jsonOf(await r.api(`/api/v1/machines/${m.system_id}`));
    assert.deepEqual(shown, m);

    const upd = await r.api(`/api/v1/machines/${m.system_id}`, {
      method: 'PATCH',
      json: { status: 'READY', tags: ['web', 'prod'], power_parameters: m.power_parameters },
    });
    assert.equal(upd.status, 200);
    const u = await jsonOf(upd);
    assert.equal(u.status, 'READY');
    assert.deepEqual(u.tags, ['prod', 'web']);
    // The masked secret sent back did not overwrite the stored one.
    assert.equal(getMachine(r.db, m.system_id)?.power_parameters.power_pass, 'hunter2');

    const del = await r.api(`/api/v1/machines/${m.system_id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    await errorOf(await r.api(`/api/v1/machines/${m.system_id}`), 404, 'KILN_ERR_NOT_FOUND');
    await errorOf(
      await r.api(`/api/v1/machines/${m.system_id}`, { method: 'DELETE' }),
      404,
      'KILN_ERR_NOT_FOUND',
    );
    await errorOf(
      await r.api(`/api/v1/machines/${m.system_id}`, { method: 'PATCH', json: { status: 'READY' } }),
      404,
      'KILN_ERR_NOT_FOUND',
    );
  });

  test('a hostname is generated when omitted', async () => {
    const m = await jsonOf(await r.api('/api/v1/machines', { method: 'POST', json: {} }));
    assert.match(m.hostname, /^[a-z]+-[a-z]+/);
    assert.match(m.system_id, /^[a-z0-9]{6}$/);
  });

  test('duplicate MAC or hostname → 409, nothing half-written', async () => {
    await r.api('/api/v1/machines', {
      method: 'POST',
      json: { hostname: 'dup', boot_mac: '02:aa:00:00:00:01' },
    });
    const count = () => (r.db.prepare('SELECT count(*) AS n FROM machines').get() as { n: number }).n;
    const before = count();
    const e1 = await errorOf(
      await r.api('/api/v1/machines', {
        method: 'POST',
        json: { hostname: 'other', boot_mac: '02-AA-00-00-00-01' },
      }),
      409,
      'KILN_ERR_CONFLICT',
    );
    assert.match(e1.message, /MAC 02:aa:00:00:00:01 already belongs/);
    const e2 = await errorOf(
      await r.api('/api/v1/machines', {
        method: 'POST',
        json: { hostname: 'dup', interfaces: [{ mac: '02:aa:00:00:00:02' }] },
      }),
      409,
      'KILN_ERR_CONFLICT',
    );
    assert.equal(e2.details.field, 'hostname');
    assert.equal(count(), before);
    const other = await jsonOf(
      await r.api('/api/v1/machines', { method: 'POST', json: { hostname: 'dup2' } }),
    );
    await errorOf(
      await r.api(`/api/v1/machines/${other.system_id}`, { method: 'PATCH', json: { hostname: 'dup' } }),
      409,
      'KILN_ERR_CONFLICT',
    );
    await errorOf(
      await r.api(`/api/v1/machines/${other.system_id}`, {
        method: 'PATCH',
        json: { boot_mac: '02:aa:00:00:00:01' },
      }),
      409,
      'KILN_ERR_CONFLICT',
    );
    assert.equal((await jsonOf(await r.api(`/api/v1/machines/${other.system_id}`))).boot_mac, null);
  });

  test('bad bodies: malformed JSON, wrong types, unknown fields, not JSON, too large, empty', async () => {
    const post = (body: string, type = 'application/json') =>
      r.api('/api/v1/machines', { method: 'POST', body, headers: { 'content-type': type } });
    const e1 = await errorOf(await post('{"hostname": '), 400, 'KILN_ERR_VALIDATION');
    assert.match(e1.message, /not valid JSON/);
    const e2 = await errorOf(await post('{"hostname": 42, "tags": "x"}'), 400, 'KILN_ERR_VALIDATION');
    assert.deepEqual(
      e2.details.issues.map((i: { field: string }) => i.field),
      ['hostname', 'tags'],
    );
    const e3 = await errorOf(await post('{"hostnmae": "a"}'), 400, 'KILN_ERR_VALIDATION');
    assert.match(e3.message, /hostnmae: unknown field/);
    const e4 = await errorOf(
      await post('{"interfaces": [{"mac": "02:00:00:00:00:09", "speed": 1}]}'),
      400,
      'KILN_ERR_VALIDATION',
    );
    assert.match(e4.message, /interfaces\.0\.speed: unknown field/);
    await errorOf(await post('[1,2]'), 400, 'KILN_ERR_VALIDATION');
    await errorOf(
      await post('hostname=a', 'application/x-www-form-urlencoded'),
      415,
      'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    await errorOf(await post(''), 400, 'KILN_ERR_VALIDATION');
    const big = JSON.stringify({ description: 'x'.repeat(5000) });
    await errorOf(await post(big), 413, 'KILN_ERR_PAYLOAD_TOO_LARGE');
    // Chunked, so no Content-Length to check first: the limit holds while streaming.
    const chunked = await r.api('/api/v1/machines', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    await errorOf(chunked, 413, 'KILN_ERR_PAYLOAD_TOO_LARGE');
    const e5 = await errorOf(await post('{"boot_mac": "nope"}'), 400, 'KILN_ERR_VALIDATION');
    assert.match(e5.message, /^boot_mac:/);
    const e6 = await errorOf(await post('{"status": "FLYING"}'), 400, 'KILN_ERR_VALIDATION');
    assert.equal(e6.details.issues[0].field, 'status');
  });

  test('bad queries: unknown parameter, bad limit, repeated keys, bad cursor', async () => {
    const e1 = await errorOf(await r.api('/api/v1/machines?colour=red'), 400, 'KILN_ERR_VALIDATION');
    assert.match(e1.message, /colour: unknown field/);
    for (const q of [
      'limit=0',
      'limit=1001',
      'limit=abc',
      'limit=1.5',
      'cursor=%21%21',
      'sort=nope',
      'status=FLYING',
      'mac=xyz',
    ]) {
      await errorOf(await r.api(`/api/v1/machines?${q}`), 400, 'KILN_ERR_VALIDATION');
    }
    await errorOf(await r.api('/api/v1/machines?hostname=a&hostname=b'), 400, 'KILN_ERR_VALIDATION');
  });

  test('SQL metacharacters in filters are only ever compared', async () => {
    const evil = ["' OR '1'='1", '"; DROP TABLE machines; --', '%', '_', "\\'", 'a\u0000b'];
    for (const v of evil) {
      for (const f of ['hostname', 'tag', 'zone', 'pool', 'architecture']) {
        const res = await r.api(`/api/v1/machines?${f}=${encodeURIComponent(v)}`);
        assert.equal(res.status, 200, `${f}=${v}`);
        assert.deepEqual((await jsonOf(res)).items, []);
      }
    }
    assert.ok((r.db.prepare('SELECT count(*) AS n FROM machines').get() as { n: number }).n > 0);
  });

  test("a machine's events, paginated", async () => {
    const m = createMachine(r.db, { hostname: 'evented' });
    for (let i = 0; i < 7; i++)
      appendEvent(r.db, m.id, { type: 'boot.dhcp', level: 'info', text: `hop ${i}` });
    const p1 = await jsonOf(await r.api(`/api/v1/machines/${m.system_id}/events?limit=5`));
    assert.equal(p1.items.length, 5);
    assert.equal(p1.items[0].text, 'hop 0');
    const p2 = await jsonOf(await r.api(`/api/v1/machines/${m.system_id}/events?limit=5&cursor=${p1.next}`));
    assert.deepEqual(
      p2.items.map((e: { text: string }) => e.text),
      ['hop 5', 'hop 6'],
    );
    assert.equal(p2.next, null);
    await errorOf(await r.api('/api/v1/machines/nosuch/events'), 404, 'KILN_ERR_NOT_FOUND');
  });

  test('unknown API routes and methods', async () => {
    await errorOf(await r.api('/api/v1/nothing'), 404, 'KILN_ERR_NOT_FOUND');
    const res = await r.api('/api/v1/machines', { method: 'PUT', json: {} });
    await errorOf(res, 405, 'KILN_ERR_METHOD_NOT_ALLOWED');
    assert.match(res.headers.get('allow') ?? '', /POST/);
  });
});

describe('listing 10k machines over HTTP', () => {
  let r: TestRegion;
  const N = 10_000;
  before(async () => {
    r = await startRegion();
    r.db.transaction(() => {
      for (let i = 0; i < N; i++) {
        createMachine(r.db, {
          hostname: `n${String(i).padStart(5, '0')}`,
          status: i % 3 === 0 ? 'READY' : 'NEW',
          boot_mac: `0a:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
          tags: i % 100 === 0 ? ['hundred'] : [],
          pool: i < 5000 ? 'low' : 'high',
        });
      }
    })();
  });
  after(() => r.close());

  async function walk(query: string): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = null;
    do {
      const res = await r.api(
        `/api/v1/machines?${query}${next ? `&cursor=${encodeURIComponent(next)}` : ''}`,
      );
      assert.equal(res.status, 200);
      const page = await jsonOf(res);
      out.push(...page.items.map((m: { hostname: string }) => m.hostname));
      next = page.next;
    } while (next);
    return out;
  }

  test('default page is 100 with a next cursor', async () => {
    const page = await jsonOf(await r.api('/api/v1/machines'));
    assert.equal(page.items.length, 100);
    assert.equal(typeof page.next, 'string');
  });

  test('full walk at limit=1000 sees every machine exactly once', async () => {
    const all = await walk('limit=1000');
    assert.equal(all.length, N);
    assert.equal(new Set(all).size, N);
  });

  test('sorted and filtered walks', async () => {
    const desc = await walk('limit=700&sort=-hostname&status=READY');
    assert.equal(desc.length, Math.ceil(N / 3));
    assert.deepEqual(desc, [...desc].sort().reverse());
    assert.equal((await walk('limit=1000&tag=hundred&pool=high')).length, 50);
    assert.equal((await walk('limit=1000&status=READY,NEW')).length, N);
    assert.deepEqual(await walk('mac=0a-00-00-00-01-00'), ['n00256']);
    assert.deepEqual(await walk('hostname=n09999'), ['n09999']);
  });
});
