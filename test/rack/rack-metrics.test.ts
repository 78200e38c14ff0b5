import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TftpStats } from '../../src/net/tftp-server.js';
import {
  addStats,
  countHttp,
  declaredLength,
  renderRackMetrics,
  withMetrics,
} from '../../src/rack/rack-metrics.js';

const tftp = (over: Partial<TftpStats> = {}): TftpStats => ({
  active: 0,
  started: 0,
  completed: 0,
  clientEnded: 0,
  timedOut: 0,
  failed: 0,
  bytesSent: 0,
  retransmits: 0,
  duplicateAcks: 0,
  ...over,
});

test('declaredLength reads every writeHead form', () => {
  assert.equal(declaredLength([200, { 'Content-Length': 12 }]), 12);
  assert.equal(declaredLength([206, 'Partial', { 'content-length': '7' }]), 7);
  assert.equal(declaredLength([200, ['Content-Type', 'x', 'Content-Length', '5']]), 5);
  assert.equal(declaredLength([200, [['CONTENT-LENGTH', '9']]]), 9);
  assert.equal(declaredLength([200]), undefined);
  assert.equal(declaredLength([200, { 'Content-Length': 'abc' }]), undefined);
  assert.equal(declaredLength([200, { 'Content-Length': -3 }]), undefined);
});

test('render: Prometheus text with HELP/TYPE once per family and per-worker samples', () => {
  const text = renderRackMetrics({
    processes: [
      {
        worker: '1',
        stats: {
          tftp: tftp({ completed: 3, bytesSent: 300 }),
          http: { requests: 2, bytes: 10, aborted: 1, byStatus: { '200': 1, '404': 1 } },
        },
        restarts: 2,
        up: true,
      },
      { worker: '2', stats: { tftp: tftp({ active: 1 }), http: null }, restarts: 0, up: false },
    ],
    dhcpLeases: { active: 4, released: 1, declined: 0 },
  });
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.filter((l) => l === '# TYPE kiln_rack_tftp_transfers_total counter').length, 1);
  for (const want of [
    'kiln_rack_worker_up{worker="1"} 1',
    'kiln_rack_worker_up{worker="2"} 0',
    'kiln_rack_worker_restarts_total{worker="1"} 2',
    'kiln_rack_tftp_transfers_total{worker="1",result="completed"} 3',
    'kiln_rack_tftp_sent_bytes_total{worker="1"} 300',
    'kiln_rack_tftp_transfers_active{worker="2"} 1',
    'kiln_rack_http_requests_total{worker="1",code="200"} 1',
    'kiln_rack_http_requests_total{worker="1",code="404"} 1',
    'kiln_rack_http_aborted_total{worker="1"} 1',
    'kiln_rack_dhcp_leases{state="active"} 4',
  ]) {
    assert.ok(lines.includes(want), want);
  }
  assert.ok(!text.includes('http_requests_total{worker="2"'), 'no HTTP samples for a worker without HTTP');
  // One process, no workers: no worker_up family at all.
  const single = renderRackMetrics({
    processes: [{ worker: 'main', stats: { tftp: null, http: null } }],
    dhcpLeases: null,
  });
  assert.ok(!single.includes('kiln_rack_worker_up'));
});

test('addStats: counters add up across a worker’s lives, gauges come from the current one', () => {
  const a = {
    tftp: tftp({ completed: 2, active: 5, bytesSent: 10 }),
    http: { requests: 1, bytes: 5, aborted: 0, byStatus: { '200': 1 } },
  };
  const b = {
    tftp: tftp({ completed: 1, active: 1, bytesSent: 4 }),
    http: { requests: 2, bytes: 1, aborted: 1, byStatus: { '200': 1, '404': 1 } },
  };
  const s = addStats(a, b);
  assert.equal(s.tftp?.completed, 3);
  assert.equal(s.tftp?.bytesSent, 14);
  assert.equal(s.tftp?.active, 1);
  assert.deepEqual(s.http, { requests: 3, bytes: 6, aborted: 1, byStatus: { '200': 2, '404': 1 } });
  assert.equal(addStats({ tftp: null, http: null }, b).tftp?.completed, 1);
  assert.equal(addStats(a, { tftp: null, http: null }).tftp?.active, 0, 'a dead life has nothing active');
});

test('countHttp counts statuses, bytes as declared (HEAD none), and cut-off responses', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'Content-Length': 10_000_000 });
      res.write(Buffer.alloc(65536));
      // never ends: the client gives up
      return;
    }
    if (req.url === '/nope') {
      res.statusCode = 404;
      res.setHeader('Content-Length', 3);
      res.end('no\n');
      return;
    }
    res.writeHead(200, { 'Content-Length': 5 });
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const stats = countHttp(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const curl = (args: string[]) =>
    new Promise<void>((resolve) => execFile('curl', ['-s', '-o', '/dev/null', ...args], () => resolve()));
  await curl([`${base}/a`]);
  await curl([`${base}/a`]);
  await curl(['-I', `${base}/a`]);
  await curl([`${base}/nope`]);
  await curl(['--max-time', '1', `${base}/big`]);
  const deadline = Date.now() + 10_000;
  while (stats().aborted === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const s = stats();
  assert.equal(s.requests, 5);
  assert.deepEqual(s.byStatus, { '200': 3, '404': 1 });
  assert.equal(s.bytes, 5 + 5 + 3);
  assert.equal(s.aborted, 1);
});

test('withMetrics answers /metrics over HTTP only and passes the rest through', async () => {
  const asked: string[] = [];
  const r = withMetrics(
    {
      resolve: async (req) => {
        asked.push(`${req.protocol}:${req.path}`);
        return null;
      },
    },
    async () => ({
      processes: [{ worker: 'main', stats: { tftp: tftp({ completed: 1 }), http: null } }],
      dhcpLeases: null,
    }),
  );
  const base = { remoteAddress: '10.0.0.2', remotePort: 1, localAddress: '10.0.0.1' };
  const m = await r.resolve({ ...base, path: '/metrics', protocol: 'http' });
  assert.equal(m?.kind, 'content');
  assert.match(
    m.kind === 'content' ? m.body.toString() : '',
    /kiln_rack_tftp_transfers_total\{worker="main",result="completed"\} 1/,
  );
  assert.match(m.contentType ?? '', /^text\/plain; version=0\.0\.4/);
  assert.equal(await r.resolve({ ...base, path: '/metrics', protocol: 'tftp' }), null);
  assert.equal(await r.resolve({ ...base, path: '/boot.ipxe', protocol: 'http' }), null);
  assert.deepEqual(asked, ['tftp:/metrics', 'http:/boot.ipxe']);
});
