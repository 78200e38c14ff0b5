import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';

/**
 * The default image: built once per run (cached under images/out, so an unchanged rebuild is a
 * stamp check), then booted for real in QEMU (TCG) with its kernel and initrd. QEMU's user-mode
 * network (restricted) gives the guest a DHCP lease and forwards 10.0.2.100:80 to this host's
 * loopback, where the test's HTTP server plays the region's metadata endpoint.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'images', 'out');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Report {
  headers: IncomingHttpHeaders;
  url: string;
  body: Record<string, any>;
}

function buildImage(): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'images', 'build.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `images/build.mjs failed:\n${r.stderr}`);
  return r.stderr;
}

/** Lists a newc archive with GNU cpio: names and `ls -l`-style types. */
function cpioList(archive: Buffer): string {
  return execFileSync('cpio', ['-itv', '--quiet'], { input: archive, encoding: 'utf8' });
}

describe('default boot image', () => {
  before(() => {
    buildImage();
  });

  test('the build writes kernel, initrd and a manifest whose sha256s match; a rebuild is a no-op', () => {
    const manifest = JSON.parse(readFileSync(join(OUT, 'manifest.json'), 'utf8'));
    for (const f of ['vmlinuz', 'initrd.img']) {
      const buf = readFileSync(join(OUT, f));
      assert.equal(manifest.files[f].sha256, sha(buf), f);
      assert.equal(manifest.files[f].size, buf.length, f);
    }
    assert.equal(manifest.name, 'kiln/ephemeral');
    assert.match(manifest.kernel_version, /^\d+\.\d+\.\d+-\d+-amd64$/);
    // A bzImage carries "HdrS" at offset 0x202 (Linux x86 boot protocol).
    assert.equal(readFileSync(join(OUT, 'vmlinuz')).subarray(0x202, 0x206).toString('latin1'), 'HdrS');
    const before = readFileSync(join(OUT, 'initrd.img'));
    assert.match(buildImage(), /up to date/);
    assert.ok(readFileSync(join(OUT, 'initrd.img')).equals(before));
    assert.ok(before.length < 4 * 1024 * 1024, `initrd is small (${before.length} bytes)`);
  });

  test('the initramfs holds init, static busybox, /dev/console and the NIC modules in load order', () => {
    const archive = gunzipSync(readFileSync(join(OUT, 'initrd.img')));
    const listing = cpioList(archive);
    assert.match(listing, /^-rwxr-xr-x .* init$/m);
    assert.match(listing, /^-rwxr-xr-x .* bin\/busybox$/m);
    assert.match(listing, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    const dir = mkdtempSync(join(tmpdir(), 'kiln-initrd-'));
    try {
      execFileSync('cpio', ['-id', '--quiet', '--no-absolute-filenames', '--nonmatching', 'dev/console'], {
        input: archive,
        cwd: dir,
      });
      const order = readFileSync(join(dir, 'lib/modules/load-order'), 'utf8').trim().split('\n');
      for (const m of ['virtio_pci.ko', 'virtio_net.ko', 'e1000.ko', 'failover.ko', 'net_failover.ko']) {
        assert.ok(order.includes(m), `${m} is loaded`);
        assert.ok(existsSync(join(dir, 'lib/modules', m)), `${m} is present`);
      }
      // Dependencies load before what needs them.
      assert.ok(order.indexOf('virtio_ring.ko') < order.indexOf('virtio_net.ko'));
      assert.ok(order.indexOf('net_failover.ko') < order.indexOf('virtio_net.ko'));
      const shCheck = spawnSync('sh', ['-n', join(dir, 'init')]);
      assert.equal(shCheck.status, 0, String(shCheck.stderr));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('booted in QEMU', () => {
    let server: Server;
    let port = 0;
    const reports: Report[] = [];
    const procs: ChildProcess[] = [];

    before(async () => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          let body: Record<string, any> = {};
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = { unparsable: Buffer.concat(chunks).toString('utf8') };
          }
          reports.push({ headers: req.headers, url: req.url ?? '', body });
          const ok = req.headers.authorization === 'Bearer good-token';
          res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
          res.end(ok ? '{"ok":true}' : '{"error":{"code":"KILN_ERR_UNAUTHORIZED"}}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });

    after(async () => {
      for (const p of procs) if (p.exitCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    /** Boots the image; resolves with the serial console once QEMU exits (the guest powered off). */
    function boot(nic: string, mac: string, cmdline: string, extra: string[] = []): Promise<string> {
      const args = [
        '-machine',
        'pc',
        '-accel',
        'tcg',
        '-m',
        '256',
        '-nographic',
        '-no-reboot',
        '-kernel',
        join(OUT, 'vmlinuz'),
        '-initrd',
        join(OUT, 'initrd.img'),
        '-append',
        `console=ttyS0 quiet ${cmdline}`,
        // restrict=on: the guest reaches nothing outside QEMU except 10.0.2.100:80, which each
        // connection hands to `busybox nc` to this test's server on loopback.
        '-netdev',
        `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:busybox nc 127.0.0.1 ${port}`,
        '-device',
        `${nic},netdev=n0,mac=${mac}`,
        ...extra,
      ];
      const p = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      let console = '';
      p.stdout!.on('data', (c: Buffer) => {
        console += c.toString('latin1');
      });
      p.stderr!.on('data', (c: Buffer) => {
        console += c.toString('latin1');
      });
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          if (p.pid) process.kill(p.pid, 'SIGKILL');
          reject(new Error(`VM did not power off within 150 s; console:\n${console}`));
        }, 150_000);
        p.on('exit', () => {
          clearTimeout(deadline);
          resolve(console);
        });
      });
    }

    test('e1000 and virtio-net guests DHCP, report their hardware with the token, and power off', async () => {
      const [e1000, virtio] = await Promise.all([
        boot(
          'e1000',
          '52:54:00:aa:00:01',
          `kiln.metadata_url=http://10.0.2.100/metadata/v1/hardware kiln.token=good-token BOOTIF=01-52-54-00-AA-00-01`,
          [
            '-drive',
            'file=/dev/null,if=none,id=d0,format=raw,readonly=on',
            '-device',
            'virtio-blk-pci,drive=d0',
          ],
        ),
        boot(
          'virtio-net-pci',
          '52:54:00:aa:00:02',
          `kiln.metadata_url=http://10.0.2.100/metadata/v1/hardware kiln.token=bad-token`,
        ),
      ]);
      assert.match(e1000, /kiln-init: eth0 52:54:00:aa:00:01 got 10\.0\.2\.15\/24/, e1000);
      assert.match(e1000, /kiln-init: posted hardware summary/, e1000);
      assert.match(e1000, /kiln-init: powering off/, e1000);
      assert.match(virtio, /kiln-init: eth0 52:54:00:aa:00:02 got/, virtio);
      assert.match(virtio, /kiln-init: ERROR: could not post the hardware summary/, virtio);
      assert.match(virtio, /kiln-init: powering off/, virtio);
      assert.doesNotMatch(e1000 + virtio, /good-token|bad-token/, 'the token is never printed');

      const good = reports.find((r) => r.headers.authorization === 'Bearer good-token');
      assert.ok(good, 'the e1000 guest reported');
      assert.equal(good.url, '/metadata/v1/hardware');
      assert.equal(good.headers['content-type'], 'application/json');
      const hw = good.body;
      assert.equal(hw.schema, 1);
      assert.equal(hw.arch, 'amd64');
      assert.equal(hw.machine, 'x86_64');
      assert.equal(hw.firmware, 'bios');
      assert.equal(hw.boot_mac, '52:54:00:aa:00:01');
      assert.equal(hw.cpu.count, 1);
      assert.ok(hw.memory_bytes > 128 * 1024 * 1024 && hw.memory_bytes <= 256 * 1024 * 1024);
      assert.deepEqual(hw.interfaces, [
        { name: 'eth0', mac: '52:54:00:aa:00:01', ipv4: '10.0.2.15/24', driver: 'e1000' },
      ]);
      assert.deepEqual(
        hw.disks.map((d: { name: string }) => d.name),
        ['vda'],
      );
      assert.equal(hw.dmi.sys_vendor, 'QEMU');
      // The rejected guest retried (five attempts) before giving up.
      const bad = reports.filter((r) => r.headers.authorization === 'Bearer bad-token');
      assert.equal(bad.length, 5);
      assert.equal(bad[0]!.body.interfaces[0].driver, 'virtio_net');
      assert.equal(bad[0]!.body.boot_mac, null);
    });
  });
});
