import { stat } from 'node:fs/promises';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Mac } from '../lib/mac.js';
import type { BootRequest, BootResolver, BootSource } from '../net/boot-source.js';
import { resolveUnderRoot } from '../net/safe-path.js';
import { type BootPath, parseBootPath } from '../protocols/bootcfg/boot-path.js';
import type { BootSpec } from '../protocols/bootcfg/boot-spec.js';
import { renderGrubConfig, renderGrubDefault } from '../protocols/bootcfg/grub.js';
import { renderBootIpxe, renderIpxeScript } from '../protocols/bootcfg/ipxe.js';
import { renderPxelinuxConfig, renderPxelinuxDefault } from '../protocols/bootcfg/pxelinux.js';
import type { ArgsOf, ResultOf } from '../rpc/command.js';
import type { GetBootConfig } from '../rpc/commands/boot.js';
import type { BootHop } from './boot-timeline.js';

export type BootConfigArgs = ArgsOf<typeof GetBootConfig>;
export type BootConfig = ResultOf<typeof GetBootConfig>;

/** Where the booter gets a machine's boot config: the region over RPC in the rack, a fake in tests. */
export interface BootConfigSource {
  getBootConfig(args: BootConfigArgs): Promise<BootConfig>;
}

/** The rack's image cache (rack/image-cache.ts): only complete, verified files have a path. */
export interface BootImageFiles {
  pathFor(sha256: string): string | null;
}

/** Where boot hops go (rack/boot-timeline.ts). */
export interface BootHopSink {
  record(hop: BootHop): void;
  machineKnown(mac: Mac): void;
}

/**
 * First-stage loaders by the name DHCP hands out, from Debian's packages (ipxe, pxelinux). These
 * paths are the operator's, not the network's, so they are trusted as given: Debian's
 * `/usr/lib/ipxe/ipxe.efi` is itself a symlink to `/boot/ipxe.efi`.
 */
export const DEFAULT_LOADERS: Readonly<Record<string, string>> = {
  'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
  'snponly.efi': '/usr/lib/ipxe/snponly.efi',
  'lpxelinux.0': '/usr/lib/PXELINUX/lpxelinux.0',
};

/** pxelinux's modules (`ldlinux.c32`, `poweroff.c32`, `libcom32.c32`), each name confined to the dir. */
export const DEFAULT_MODULE_DIRS: readonly string[] = ['/usr/lib/syslinux/modules/bios'];

export interface BooterOptions {
  source: BootConfigSource;
  images: BootImageFiles;
  logger: Logger;
  /** The rack's boot HTTP port (rack.http.port): kernel and initrd URLs point there. */
  httpPort: number;
  /** rack.advertise_address; empty: the address the request arrived on. */
  advertiseAddress?: string;
  /** Loader name → file (trusted, operator-given). Default: DEFAULT_LOADERS. */
  loaders?: Readonly<Record<string, string>>;
  /** Directories other plain names are looked up in, each a confinement root. Default: DEFAULT_MODULE_DIRS. */
  moduleDirs?: readonly string[];
  timeline?: BootHopSink;
  /** The rack's DHCP leases: which MAC holds this address, to attribute TFTP hops to a machine. */
  macForAddress?: (ip: string) => Mac | null;
  /** How long a GetBootConfig answer is reused for the same machine (ms). */
  cacheMs?: number;
  now?: () => number;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * The rack's boot policy: one namespace for TFTP and HTTP. Fixed names (`boot.ipxe`, defaults)
 * are rendered here; per-machine names ask the region through GetBootConfig (answers reused
 * briefly, and concurrent asks for one machine share one call); `/images/<sha256>/<name>` come
 * from the image cache; anything else is a loader or module looked up under the loader dirs.
 */
export class Booter implements BootResolver {
  private readonly cache = new Map<string, { expires: number; answer: Promise<BootConfig> }>();
  private readonly macByIp = new Map<string, Mac>();
  private readonly now: () => number;
  private readonly cacheMs: number;
  private readonly loaders: ReadonlyMap<string, string>;
  private readonly moduleDirs: readonly string[];

  constructor(private readonly opts: BooterOptions) {
    this.now = opts.now ?? Date.now;
    this.cacheMs = opts.cacheMs ?? 5000;
    this.loaders = new Map(Object.entries(opts.loaders ?? DEFAULT_LOADERS));
    this.moduleDirs = opts.moduleDirs ?? DEFAULT_MODULE_DIRS;
  }

  async resolve(req: BootRequest): Promise<BootSource | null> {
    const p = parseBootPath(req.path);
    const remote = plainIpv4(req.remoteAddress);
    const proto = req.protocol;
    switch (p.kind) {
      case 'boot-ipxe':
        this.hop(remote, null, `${proto}.script`, `${proto.toUpperCase()} boot.ipxe`, req);
        return content(renderBootIpxe());
      case 'ipxe-machine':
      case 'pxelinux-mac':
      case 'grub-mac':
        return this.machineConfig(p, req, remote);
      case 'pxelinux-default':
        return content(renderPxelinuxDefault());
      case 'grub-default':
        return content(renderGrubDefault());
      case 'pxelinux-fallback':
        return null;
      case 'image': {
        const path = this.opts.images.pathFor(p.sha256);
        if (!path) {
          this.opts.logger.warn({ sha256: p.sha256, client: remote }, 'boot image not in the rack cache');
          return null;
        }
        this.hop(
          remote,
          null,
          `${proto}.image`,
          `${proto.toUpperCase()} ${p.name} (${p.sha256.slice(0, 12)})`,
          req,
        );
        return { kind: 'file', path, contentType: 'application/octet-stream' };
      }
      case 'file': {
        const loader = this.loaders.get(p.name);
        if (loader !== undefined) {
          if (!(await isFile(loader))) {
            this.opts.logger.error({ name: p.name, path: loader }, 'boot loader missing on this rack');
            return null;
          }
          this.hop(remote, null, `${proto}.file`, `${proto.toUpperCase()} ${p.name}`, req);
          return { kind: 'file', path: loader, contentType: 'application/octet-stream' };
        }
        for (const dir of this.moduleDirs) {
          const r = await resolveUnderRoot(dir, p.name);
          if (r.path) {
            this.hop(remote, null, `${proto}.file`, `${proto.toUpperCase()} ${p.name}`, req);
            return { kind: 'file', path: r.path, contentType: 'application/octet-stream' };
          }
          if ('refused' in r && r.refused) {
            this.opts.logger.warn({ path: req.path, client: remote }, 'boot path refused');
            return null;
          }
        }
        return null;
      }
      default:
        // Paths outside kiln's namespace, traversal attempts among them.
        this.opts.logger.info(
          { path: req.path.slice(0, 200), client: remote, protocol: proto },
          'boot path not served',
        );
        return null;
    }
  }

  private async machineConfig(
    p: Extract<BootPath, { kind: 'ipxe-machine' | 'pxelinux-mac' | 'grub-mac' }>,
    req: BootRequest,
    remote: string,
  ): Promise<BootSource> {
    const method = p.kind === 'ipxe-machine' ? 'ipxe' : p.kind === 'pxelinux-mac' ? 'pxelinux' : 'grub';
    const local = this.opts.advertiseAddress || plainIpv4(req.localAddress);
    const args: BootConfigArgs = {
      mac: p.mac,
      arch: p.kind === 'ipxe-machine' ? archOf(p.buildarch) : 'amd64',
      local_ip: local,
      remote_ip: remote,
      bios_boot_method: method,
    };
    this.macByIp.set(remote, p.mac);
    if (this.macByIp.size > 8192) this.macByIp.delete(this.macByIp.keys().next().value!);

    const cfg = await this.lookup(args);
    this.opts.timeline?.machineKnown(p.mac);
    const spec = this.specFor(p.mac, cfg, local);
    const body =
      method === 'ipxe'
        ? renderIpxeScript(spec)
        : method === 'pxelinux'
          ? renderPxelinuxConfig(spec)
          : renderGrubConfig(spec);
    this.hop(
      remote,
      p.mac,
      `${req.protocol}.script`,
      `${req.protocol.toUpperCase()} ${method} config (${cfg.purpose}) for ${cfg.hostname}`,
      req,
    );
    return content(body);
  }

  private specFor(mac: Mac, cfg: BootConfig, local: string): BootSpec {
    if (cfg.purpose === 'local' || cfg.purpose === 'poweroff') return { purpose: cfg.purpose, mac };
    if (!cfg.kernel || !cfg.initrd) {
      throw new KilnError('KILN_ERR_BOOT_NO_IMAGE', `no kernel/initrd for ${cfg.purpose} of ${mac}`, {
        system_id: cfg.system_id,
      });
    }
    const base = `http://${urlHost(local)}:${this.opts.httpPort}`;
    return {
      purpose: cfg.purpose,
      mac,
      files: {
        kernelUrl: `${base}/images/${cfg.kernel.sha256}/${cfg.kernel.filename}`,
        initrdUrl: `${base}/images/${cfg.initrd.sha256}/${cfg.initrd.filename}`,
        initrdName: cfg.initrd.filename,
        // Split on spaces only: any other whitespace stays inside a word, and the renderer refuses it.
        params: cfg.kernel_params.split(' ').filter((w) => w.length > 0),
      },
    };
  }

  private lookup(args: BootConfigArgs): Promise<BootConfig> {
    const key = `${args.mac}|${args.arch}|${args.bios_boot_method}|${args.local_ip}`;
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return hit.answer;
    const answer = this.opts.source.getBootConfig(args);
    this.cache.set(key, { expires: now + this.cacheMs, answer });
    // A failed ask is not remembered: the next request asks again.
    answer.catch(() => this.cache.delete(key));
    if (this.cache.size > 4096) {
      for (const [k, v] of this.cache) if (v.expires <= now) this.cache.delete(k);
    }
    return answer;
  }

  private hop(remote: string, mac: Mac | null, type: string, text: string, req: BootRequest): void {
    const tl = this.opts.timeline;
    if (!tl) return;
    const who = mac ?? this.macByIp.get(remote) ?? this.opts.macForAddress?.(remote) ?? null;
    if (!who) return;
    const data: Record<string, unknown> = { path: req.path.slice(0, 256), client: remote };
    if (req.userAgent) data.user_agent = req.userAgent.slice(0, 128);
    tl.record({ mac: who, type, text: `${text} to ${remote}`, data });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function content(text: string): BootSource {
  return { kind: 'content', body: Buffer.from(text, 'utf8'), contentType: TEXT };
}

/** Sockets on `::` report IPv4 peers as `::ffff:a.b.c.d`. */
export function plainIpv4(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

function urlHost(addr: string): string {
  return addr.includes(':') ? `[${addr}]` : addr;
}

/**
 * iPXE's `${buildarch}` → kiln's architecture. BIOS iPXE (undionly.kpxe, the NIC ROMs) is an
 * i386 build even on 64-bit CPUs, and kiln ships no 32-bit images, so i386 is taken as amd64.
 */
export function archOf(buildarch: string | undefined): string {
  switch (buildarch) {
    case undefined:
    case 'x86_64':
    case 'i386':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm32':
      return 'armhf';
    default:
      return buildarch;
  }
}
