import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeRouterSolicitation } from '../../src/protocols/ndp/router-solicitation.js';
import { parseRdisc6, RaLab, type Responder, sh, until } from './ra-lab.js';

/**
 * The responder on a veth in a namespace, against real solicitors: rdisc6 (ndisc6) and the client
 * namespace's Linux kernel, which must take the answer and change nothing (no default route, no
 * address).
 */
describe('IPv6 RA responder (namespaces, rdisc6)', () => {
  let lab: RaLab;
  let responder: Responder;
  let rackLinkLocal: string;
  let clientLinkLocal: string;

  before(async () => {
    lab = new RaLab();
    rackLinkLocal = await lab.linkLocal(lab.rackNs, 'ra0');
    clientLinkLocal = await lab.linkLocal(lab.clientNs, 'eth0');
  });
  after(() => lab?.close());

  test('without the responder, rdisc6 hears no router', () => {
    const r = lab.rdisc6(500);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /Router lifetime/);
  });

  test('rdisc6 gets an RA from the rack: lifetime 0, no prefix, no flags, the rack MAC', async () => {
    responder = await lab.startResponder();
    const r = lab.rdisc6();
    assert.equal(r.status, 0, r.stderr);
    const ra = parseRdisc6(r.stdout);
    assert.equal(ra['Router lifetime'], '0 (0x00000000) seconds');
    assert.equal(ra['Stateful address conf.'], 'No');
    assert.equal(ra['Stateful other conf.'], 'No');
    assert.equal(ra['Hop limit'], 'undefined (      0x00)');
    assert.equal(ra['Reachable time'], 'unspecified (0x00000000)');
    assert.equal(ra['Retransmit time'], 'unspecified (0x00000000)');
    assert.equal(ra['Source link-layer address']?.toLowerCase(), lab.mac(lab.rackNs, 'ra0'));
    assert.equal(ra.from, rackLinkLocal);
    assert.doesNotMatch(r.stdout, /^ *(Prefix|MTU|Route|Recursive DNS|DNS search)\b/m);
    const stats = await responder.stats();
    assert.equal(stats.sentUnicast, 1);
    assert.equal(stats.sentMulticast, 0);
  });

  test('the client kernel took it and changed nothing: no default route, no new address', () => {
    const routes = sh(['ip', '-n', lab.clientNs, '-6', 'route', 'show']).stdout.trim().split('\n');
    assert.deepEqual(
      routes.map((l) => l.split(' ')[0]),
      ['fe80::/64'],
      routes.join('\n'),
    );
    assert.equal(sh(['ip', '-n', lab.clientNs, '-6', 'route', 'show', 'default']).stdout.trim(), '');
    const addrs = sh(['ip', '-n', lab.clientNs, '-6', '-o', 'addr', 'show', 'dev', 'eth0']).stdout;
    assert.doesNotMatch(addrs, /scope global/);
  });

  test('malformed solicitations are dropped with a debug log; the responder keeps answering', async () => {
    const before = await responder.stats();
    lab.send([
      '85000000000000', // 7 octets
      '8501000000000000', // code 1
      '85000000000000000100000000000000', // option of length 0
      '850000000000000001025254001234560000', // option longer than the message
    ]);
    // A well-formed solicitation that did not arrive with hop limit 255 was forwarded: forged.
    lab.send([encodeRouterSolicitation().toString('hex')], { hopLimit: 64 });
    await until(
      'five drops',
      () => responder.logs.filter((l) => l.msg === 'router solicitation dropped').length >= 5,
    );
    const after = await responder.stats();
    assert.equal(after.dropped - before.dropped, 5);
    assert.equal(after.sentUnicast + after.sentMulticast, before.sentUnicast + before.sentMulticast);
    const reasons = responder.logs
      .filter((l) => l.msg === 'router solicitation dropped')
      .map((l) => String(l.reason));
    assert.ok(reasons.some((r) => /< 8/.test(r)));
    assert.ok(reasons.some((r) => /code 1/.test(r)));
    assert.ok(reasons.some((r) => /length 0/.test(r)));
    assert.ok(reasons.some((r) => /needs 14 bytes/.test(r)));
    assert.ok(reasons.some((r) => /hop limit 64/.test(r)));

    const r = lab.rdisc6();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(parseRdisc6(r.stdout)['Router lifetime'], '0 (0x00000000) seconds');
  });

  test('a solicitor without a link-local address gets a multicast answer, at most one per 3 s', async () => {
    // Only a global address: the kernel sends the solicitation from it, and the responder answers
    // to all nodes (ff02::1) as RFC 4861 §6.2.6 describes.
    sh(['ip', '-n', lab.clientNs, '-6', 'addr', 'flush', 'dev', 'eth0', 'scope', 'link']);
    sh(['ip', '-n', lab.clientNs, '-6', 'addr', 'add', 'fd00:6b69:6c6e::2/64', 'dev', 'eth0', 'nodad']);
    const start = await responder.stats();
    const r1 = lab.rdisc6();
    assert.equal(r1.status, 0, r1.stderr);
    // rdisc6 heard it, so it was sent.
    const s = await responder.stats();
    assert.equal(s.sentMulticast - start.sentMulticast, 1);
    assert.equal(s.sentUnicast, start.sentUnicast);
    // A burst right after: answered too, but not before MIN_DELAY_BETWEEN_RAS has passed.
    lab.send(Array.from({ length: 5 }, () => encodeRouterSolicitation().toString('hex')));
    const r2 = lab.rdisc6(6000);
    assert.equal(r2.status, 0, r2.stderr);
    // spawnSync held this process's event loop: let the responder's log lines arrive.
    const multicasts = () =>
      responder.logs.filter((l) => l.msg === 'router advertisement sent (lifetime 0)' && l.to === 'ff02::1');
    const sends = await until(
      'two multicast answers in the log',
      () => multicasts().length >= 2 && multicasts(),
    );
    assert.equal(sends.length, 2);
    const gap = Number(sends[1]!.time) - Number(sends[0]!.time);
    // Both times come from the responder's clock; timers never fire early, 5 ms covers rounding.
    assert.ok(gap >= 2995, `multicast RAs ${gap} ms apart`);
    assert.equal(sh(['ip', '-n', lab.clientNs, '-6', 'route', 'show', 'default']).stdout.trim(), '');
    sh(['ip', '-n', lab.clientNs, '-6', 'addr', 'del', 'fd00:6b69:6c6e::2/64', 'dev', 'eth0']);
    sh([
      'ip',
      '-n',
      lab.clientNs,
      '-6',
      'addr',
      'add',
      `${clientLinkLocal}/64`,
      'dev',
      'eth0',
      'scope',
      'link',
      'nodad',
    ]);
  });

  test('stop() closes the socket and rdisc6 hears nothing again', async () => {
    const last = await responder.stop();
    assert.deepEqual(last, { stopped: true, openSockets: 0 });
    const r = lab.rdisc6(500);
    assert.notEqual(r.status, 0);
  });

  test('control: a real router RA (lifetime 1800) does give the client a default route', async () => {
    // Proves the client kernel listens to advertisements, so "no default route" above means something.
    const ra = '86000000 40000708 00000000 00000000'.replace(/ /g, '');
    lab.send([ra], { ns: lab.rackNs, ifname: 'ra0', to: 'ff02::1' });
    const route = await until('a default route in the client', () => {
      const out = sh(['ip', '-n', lab.clientNs, '-6', 'route', 'show', 'default']).stdout.trim();
      return out || null;
    });
    assert.match(route, new RegExp(`default via ${rackLinkLocal} dev eth0`));
  });
});
