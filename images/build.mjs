#!/usr/bin/env node
// Builds kiln's small default boot image into images/out/ (see images/README.md):
//   vmlinuz      the Debian kernel (the package behind the linux-image-amd64 metapackage), unpacked
//   initrd.img   a gzip'd busybox-static initramfs with the NIC modules and kiln's /init
//   manifest.json  kernel version, package, sha256 and size of both files
//
//   node images/build.mjs [--out DIR] [--force]
//
// The kernel .deb and the modules taken from it are cached under <out>/cache/, and a stamp of every
// input lets an unchanged rebuild finish at once. The archive is reproducible: same inputs, same
// bytes. Environment: KILN_IMAGE_KERNEL_PACKAGE pins the kernel package (e.g.
// linux-image-6.1.0-56-amd64) instead of resolving the metapackage.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { encodeNewc } from './cpio.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Modules the initramfs loads: NICs QEMU and common servers offer, and virtio disks to report. */
const MODULES = ['virtio_pci', 'virtio_net', 'e1000', 'virtio_blk'];
const METAPACKAGE = 'linux-image-amd64';

function log(msg) {
  process.stderr.write(`images: ${msg}\n`);
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

function writeAtomic(path, data) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** linux-image-amd64 only depends on the real package, e.g. linux-image-6.1.0-56-amd64. */
function resolveKernelPackage(cacheDir) {
  if (process.env.KILN_IMAGE_KERNEL_PACKAGE) return process.env.KILN_IMAGE_KERNEL_PACKAGE;
  try {
    const out = sh('apt-cache', ['depends', METAPACKAGE]);
    const m = /Depends:\s*(linux-image-\S+)/.exec(out);
    if (m) return m[1];
  } catch {
    // fall through: offline machines can still rebuild from the cache
  }
  const cached = existsSync(cacheDir)
    ? readdirSync(cacheDir)
        .filter((f) => /^linux-image-.*\.deb$/.test(f))
        .sort()
    : [];
  if (cached.length > 0) {
    const pkg = cached[cached.length - 1].split('_')[0];
    log(`apt-cache could not resolve ${METAPACKAGE}; using the cached ${pkg}`);
    return pkg;
  }
  throw new Error(`cannot resolve ${METAPACKAGE} (is apt configured?) and no kernel .deb is cached`);
}

function findDeb(cacheDir, pkg) {
  if (!existsSync(cacheDir)) return null;
  const debs = readdirSync(cacheDir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  return debs.length > 0 ? join(cacheDir, debs.sort()[debs.length - 1]) : null;
}

function downloadDeb(cacheDir, pkg) {
  const have = findDeb(cacheDir, pkg);
  if (have) return have;
  log(`downloading ${pkg} (apt-get download)`);
  const tmp = mkdtempSync(join(cacheDir, '.download-'));
  try {
    sh('apt-get', ['download', pkg], { cwd: tmp });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    renameSync(join(tmp, deb), join(cacheDir, deb));
    return join(cacheDir, deb);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Unpacks the kernel and the modules we need (with their dependencies, in load order) into
 * <cache>/<deb name>/, once. The full module tree (~400 MB) lives only in a temp dir meanwhile.
 */
function extractKernel(cacheDir, deb) {
  const dest = join(cacheDir, basename(deb, '.deb'));
  if (existsSync(join(dest, 'load-order'))) return dest;
  log(`unpacking ${basename(deb)}`);
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-kernel-'));
  try {
    execFileSync(
      'sh',
      ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./boot ./lib/modules', 'sh', deb, tmp],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const versions = readdirSync(join(tmp, 'lib/modules'));
    if (versions.length !== 1)
      throw new Error(`expected one kernel version in ${deb}, found ${versions.join(', ')}`);
    const version = versions[0];
    sh('depmod', ['-b', tmp, version]);
    const order = [];
    for (const m of MODULES) {
      const out = sh('modprobe', ['-d', tmp, '-S', version, '--show-depends', m]);
      for (const line of out.split('\n')) {
        const ko = /^insmod (\S+\.ko)\b/.exec(line.trim());
        if (ko && !order.includes(ko[1])) order.push(ko[1]);
      }
    }
    const staging = `${dest}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(join(staging, 'modules'), { recursive: true });
    copyFileSync(join(tmp, 'boot', `vmlinuz-${version}`), join(staging, 'vmlinuz'));
    const names = [];
    for (const ko of order) {
      const name = basename(ko);
      if (names.includes(name)) throw new Error(`two modules named ${name}`);
      copyFileSync(ko, join(staging, 'modules', name));
      names.push(name);
    }
    writeFileSync(join(staging, 'version'), `${version}\n`);
    writeFileSync(join(staging, 'load-order'), `${names.join('\n')}\n`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(staging, dest);
    log(`kernel ${version}, modules: ${names.join(' ')}`);
    return dest;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** busybox must be the static build (busybox-static): the initramfs has no libc. */
function findBusybox() {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    if (!existsSync(p)) continue;
    const elf = readFileSync(p);
    if (elf.readUInt32BE(0) !== 0x7f454c46) continue;
    if (hasInterpreter(elf)) throw new Error(`${p} is dynamically linked: install busybox-static`);
    return p;
  }
  throw new Error('busybox not found: install busybox-static');
}

/** True if a 64-bit little-endian ELF has a PT_INTERP program header (is dynamically linked). */
function hasInterpreter(elf) {
  if (elf[4] !== 2 || elf[5] !== 1) throw new Error('busybox is not a 64-bit little-endian ELF');
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > elf.length) break;
    if (elf.readUInt32LE(off) === 3) return true; // PT_INTERP
  }
  return false;
}

function buildInitramfs(kernelDir, busybox) {
  const order = readFileSync(join(kernelDir, 'load-order'), 'utf8').split('\n').filter(Boolean);
  const entries = [
    ...['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'root', 'run', 'sbin', 'sys', 'tmp', 'usr'].map(
      (path) => ({ type: 'dir', path, mode: path === 'tmp' ? 0o1777 : path === 'root' ? 0o700 : 0o755 }),
    ),
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'init', data: readFileSync(join(here, 'init.sh')), mode: 0o755 },
    { type: 'file', path: 'etc/udhcpc.script', data: readFileSync(join(here, 'udhcpc.script')), mode: 0o755 },
    { type: 'file', path: 'lib/modules/load-order', data: Buffer.from(`${order.join('\n')}\n`) },
    ...order.map((name) => ({
      type: 'file',
      path: `lib/modules/${name}`,
      data: readFileSync(join(kernelDir, 'modules', name)),
    })),
  ];
  // Node's gzip writes no name and a zero mtime: the bytes depend only on the archive.
  return gzipSync(encodeNewc(entries), { level: 9 });
}

export function build({ outDir, force = false }) {
  const cacheDir = join(outDir, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  const pkg = resolveKernelPackage(cacheDir);
  const busybox = findBusybox();
  const inputs = createHash('sha256');
  for (const f of ['build.mjs', 'cpio.mjs', 'init.sh', 'udhcpc.script'])
    inputs.update(readFileSync(join(here, f)));
  inputs.update(readFileSync(busybox));
  inputs.update(`${pkg}\n${MODULES.join(',')}\n`);
  const stamp = inputs.digest('hex');
  const manifestPath = join(outDir, 'manifest.json');
  if (!force && existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
      const ok =
        m.stamp === stamp &&
        ['vmlinuz', 'initrd.img'].every(
          (f) => existsSync(join(outDir, f)) && statSync(join(outDir, f)).size === m.files?.[f]?.size,
        );
      if (ok) {
        log(`up to date (${m.kernel_version}) in ${outDir}`);
        return m;
      }
    } catch {
      // rebuild
    }
  }
  const deb = downloadDeb(cacheDir, pkg);
  const kernelDir = extractKernel(cacheDir, deb);
  const version = readFileSync(join(kernelDir, 'version'), 'utf8').trim();
  const vmlinuz = readFileSync(join(kernelDir, 'vmlinuz'));
  const initrd = buildInitramfs(kernelDir, busybox);
  writeAtomic(join(outDir, 'vmlinuz'), vmlinuz);
  writeAtomic(join(outDir, 'initrd.img'), initrd);
  const manifest = {
    name: 'kiln/ephemeral',
    arch: 'amd64/generic',
    kernel_package: basename(deb),
    kernel_version: version,
    modules: MODULES,
    files: {
      vmlinuz: { sha256: sha256(vmlinuz), size: vmlinuz.length },
      'initrd.img': { sha256: sha256(initrd), size: initrd.length },
    },
    stamp,
  };
  writeAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  log(
    `built ${outDir}: vmlinuz ${(vmlinuz.length / 1048576).toFixed(1)} MiB, initrd.img ${(initrd.length / 1048576).toFixed(1)} MiB (${version})`,
  );
  return manifest;
}

function main(argv) {
  let outDir = join(here, 'out');
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') outDir = resolve(argv[++i] ?? '');
    else if (a === '--force') force = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('Usage: node images/build.mjs [--out DIR] [--force]\n');
      return 0;
    } else {
      process.stderr.write(`images: unknown argument ${a}\n`);
      return 2;
    }
  }
  try {
    build({ outDir, force });
    return 0;
  } catch (err) {
    process.stderr.write(`images: build failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
