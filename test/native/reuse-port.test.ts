import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isKilnError } from '../../src/lib/errors.js';
import {
  bindToDevice,
  bindUdpReusePort,
  configureNative,
  listenReusePort,
  nativeStatus,
  reusePortSocket,
} from '../../src/native/index.js';

const child = fileURLToPath(new URL('./fixtures/reuse-child.ts', import.meta.url));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  }
});

/** Start a child that binds `type` on `port` with SO_REUSEPORT; resolves with the port it got. */
function startChild(type: 'tcp4' | 'udp4', port: number): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, type, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    proc.on('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
  });
}

function tcpAsk(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => {
      data += d.toString();
    });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

function udpAsk(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // A new socket each time: a new source port, so the kernel's reuseport hash can pick either.
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no UDP answer'));
    }, 5000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send('who', port, '127.0.0.1');
  });
}

/** Ask until both pids have answered, within a deadline. */
async function seeBoth(ask: () => Promise<string>, pids: number[]): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !pids.every((p) => seen.has(String(p)))) {
    const pid = await ask();
    seen.set(pid, (seen.get(pid) ?? 0) + 1);
  }
  return seen;
}

describe('native addon: SO_REUSEPORT', () => {
  it('is built and available here', () => {
    assert.deepEqual(nativeStatus(), { available: true });
  });

  it('lets two processes share a TCP port', async () => {
    const a = await startChild('tcp4', 0);
    const b = await startChild('tcp4', a.port);
    assert.equal(b.port, a.port);
    const seen = await seeBoth(() => tcpAsk(a.port), [a.proc.pid!, b.proc.pid!]);
    assert.ok(seen.has(String(a.proc.pid)), `first child answered: ${[...seen]}`);
    assert.ok(seen.has(String(b.proc.pid)), `second child answered: ${[...seen]}`);
    a.proc.kill('SIGKILL');
    b.proc.kill('SIGKILL');
  });

  it('lets two processes share a UDP port', async () => {
    const a = await startChild('udp4', 0);
    const b = await startChild('udp4', a.port);
    const seen = await seeBoth(() => udpAsk(a.port), [a.proc.pid!, b.proc.pid!]);
    assert.ok(seen.has(String(a.proc.pid)) && seen.has(String(b.proc.pid)), `both answered: ${[...seen]}`);
    a.proc.kill('SIGKILL');
    b.proc.kill('SIGKILL');
  });

  it('fails like Node (EADDRINUSE) when a plain listener holds the port', async () => {
    const plain = net.createServer();
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const port = (plain.address() as net.AddressInfo).port;
    try {
      assert.throws(
        () => reusePortSocket({ type: 'tcp4', host: '127.0.0.1', port }),
        (err: NodeJS.ErrnoException) =>
          err.code === 'EADDRINUSE' && err.syscall === 'bind' && err.errno === -98,
      );
    } finally {
      plain.close();
    }
  });

  it('refuses bad arguments with ValidationError', () => {
    assert.throws(() => reusePortSocket({ type: 'tcp4', host: '::1', port: 0 }), /not an IPv4/);
    assert.throws(() => reusePortSocket({ type: 'tcp6', host: 'localhost', port: 0 }), /not an IPv6/);
    assert.throws(() => reusePortSocket({ type: 'udp4', host: '127.0.0.1', port: 70000 }), /out of range/);
    assert.throws(() => bindToDevice(-1, 'lo'), /file descriptor/);
    assert.throws(() => bindToDevice(0, 'a-name-longer-than-15'), /bad interface name/);
  });

  it('listenReusePort: two servers in one process share a port, on IPv4 and IPv6', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const s1 = net.createServer((c) => c.end('1'));
      const s2 = net.createServer((c) => c.end('2'));
      assert.equal(await listenReusePort(s1, host, 0), 'native');
      const port = (s1.address() as net.AddressInfo).port;
      assert.equal(await listenReusePort(s2, host, port), 'native');
      assert.equal((s2.address() as net.AddressInfo).port, port);
      const answer = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, host);
        let d = '';
        c.on('data', (x) => {
          d += x;
        });
        c.on('end', () => resolve(d));
        c.on('error', reject);
      });
      assert.ok(answer === '1' || answer === '2');
      await new Promise((r) => s1.close(r));
      await new Promise((r) => s2.close(r));
    }
  });

  it('bindUdpReusePort: two sockets share a UDP port; errors reject', async () => {
    const u1 = dgram.createSocket('udp4');
    const u2 = dgram.createSocket('udp4');
    assert.equal(await bindUdpReusePort(u1, '127.0.0.1', 0), 'native');
    assert.equal(await bindUdpReusePort(u2, '127.0.0.1', u1.address().port), 'native');
    u1.close();
    u2.close();
    const plain = dgram.createSocket('udp4');
    await new Promise<void>((r) => plain.bind(0, '127.0.0.1', r));
    const u3 = dgram.createSocket('udp4');
    await assert.rejects(bindUdpReusePort(u3, '127.0.0.1', plain.address().port), { code: 'EADDRINUSE' });
    plain.close();
  });

  it('bindToDevice binds a UDP socket to lo, and names a missing interface ENODEV', async () => {
    const fd = reusePortSocket({ type: 'udp4', host: '127.0.0.1', port: 0 });
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind({ fd }, r));
    bindToDevice(fd, 'lo');
    assert.throws(() => bindToDevice(fd, 'kiln-nonexist'), { code: 'ENODEV' });
    sock.close();
  });

  it('KILN_NO_NATIVE and native.enabled: false force the fallback', async () => {
    process.env.KILN_NO_NATIVE = '1';
    try {
      assert.equal(nativeStatus().available, false);
      assert.match(nativeStatus().reason ?? '', /KILN_NO_NATIVE/);
      assert.throws(
        () => reusePortSocket({ type: 'tcp4', host: '127.0.0.1', port: 0 }),
        (e: unknown) => isKilnError(e, 'KILN_ERR_NATIVE_UNAVAILABLE'),
      );
      // Node 20 has no reusePort: a plain listen, and it says so.
      const s = net.createServer();
      const mode = await listenReusePort(s, '127.0.0.1', 0);
      assert.equal(mode, Number(process.versions.node.split('.')[0]) >= 23 ? 'node' : 'plain');
      s.close();
    } finally {
      delete process.env.KILN_NO_NATIVE;
    }
    assert.deepEqual(configureNative({ enabled: false }), {
      available: false,
      reason: 'disabled by config (native.enabled: false)',
    });
    assert.deepEqual(configureNative({ enabled: true }), { available: true });
  });
});
