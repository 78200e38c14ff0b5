import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DhcpLab, labConfig } from './dhcp-lab.js';

let lab: DhcpLab;
before(() => {
  lab = new DhcpLab();
});
after(() => lab?.close());

test('udhcpc gets a lease from a managed subnet', async () => {
  const server = lab.startServer({ config: labConfig() });
  try {
    await server.waitFor((l) => 'ready' in l);
    const ns = lab.addClient('02:00:00:00:00:01');
    const env = lab.udhcpc(ns);
    assert.ok(env);
    console.log(env);
  } finally {
    await server.stop();
  }
});
