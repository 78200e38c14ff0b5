/**
 * Typed loader for kiln's N-API addon (src/native/kiln_native.cc): SO_REUSEPORT sockets for Node 20,
 * SO_BINDTODEVICE for DHCP, and sendfile(2) for boot files. The C++ side only makes syscalls; this
 * file validates arguments and turns errno into errors shaped like Node's own (`code`, `errno`,
 * `syscall`), so callers treat both the same.
 *
 * kiln runs without the addon: callers check `nativeStatus().available` and fall back (streams, one
 * worker). Whether it is used is decided once at start by `configureNative` (config `native.enabled`);
 * KILN_NO_NATIVE=1 in the environment also disables it, so tests can force the fallback in child
 * processes the way ws's WS_NO_BUFFER_UTIL does. That variable is the one piece of environment this
 * module reads, on purpose: it must work before any config is loaded.
 */
import type dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP, type ListenOptions, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { KilnError, ValidationError } from '../lib/errors.js';

export interface NativeStatus {
  available: boolean;
  /** Why not: build missing, unsupported platform, disabled by config or KILN_NO_NATIVE. */
  reason?: string;
}

/** The addon's functions as the C++ exports them (see kiln_native.cc for each contract). */
interface Binding {
  abiVersion: number;
  reusePortSocket(family: 4 | 6, udp: boolean, address: string, port: number, backlog: number): number;
  bindToDevice(fd: number, ifname: string): void;
  dup(fd: number): number;
  close(fd: number): number;
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  socketError(fd: number): number;
  SocketDup: new (fd: number) => SocketDupHandle;
  /** Added after ABI 2 without breaking it: absent from older builds (see icmp6Status). */
  Icmp6Socket?: new (
    ifname: string,
    passTypes: number[],
    joinGroups: string[],
    hopLimit: number,
  ) => RawIcmp6Socket;
}

/** The addon's Icmp6Socket as the C++ exports it. */
interface RawIcmp6Socket {
  readonly fd: number;
  readonly ifindex: number;
  startReading(cb: (status: number) => void): void;
  stopReading(): void;
  recv(buf: Buffer): number | [number, string, number, number, boolean];
  send(buf: Buffer, address: string, scopeId: number): number;
  close(): void;
}

/**
 * A close-on-exec duplicate of a socket's fd that this code owns (libuv owns the original and may
 * close it at any time), with a one-shot wait for writability. `close()` releases the duplicate.
 */
export interface SocketDupHandle {
  /** The duplicate fd, or -1 after close(). */
  readonly fd: number;
  /** Calls `cb` once when the socket can take more bytes or has failed (status < 0: a libuv error). */
  waitWritable(cb: (status: number) => void): void;
  /** Stops any wait and closes the duplicate (asynchronously, on libuv's next turn). Idempotent. */
  close(): void;
}

/** The ABI this loader speaks; a stale build/ from an older checkout is refused rather than misused. */
const ABI_VERSION = 2;

export class NativeUnavailableError extends KilnError {
  constructor(reason: string) {
    super('KILN_ERR_NATIVE_UNAVAILABLE', `native addon unavailable: ${reason}`, { reason });
  }
}

let enabled = true;
let loaded: { binding: Binding } | { error: string } | undefined;

function load(): { binding: Binding } | { error: string } {
  if (loaded) return loaded;
  // src/native/ and dist/native/ both sit two levels under the package root, where node-gyp builds.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const candidates = [join(root, 'build', 'Release', 'kiln_native.node')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    loaded = { error: 'build/Release/kiln_native.node is missing (run `npm run build:native`)' };
    return loaded;
  }
  try {
    const binding = createRequire(import.meta.url)(file) as Partial<Binding>;
    if (typeof binding.sendfile !== 'function') {
      loaded = { error: `unsupported platform ${process.platform}` };
    } else if (binding.abiVersion !== ABI_VERSION) {
      loaded = {
        error: `stale build (addon ABI ${binding.abiVersion}, loader ${ABI_VERSION}); run \`npm run build:native\``,
      };
    } else {
      loaded = { binding: binding as Binding };
    }
  } catch (err) {
    loaded = { error: `cannot load ${file}: ${err instanceof Error ? err.message : String(err)}` };
  }
  return loaded;
}

function envDisabled(): boolean {
  const v = process.env.KILN_NO_NATIVE;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/** Called once at start with config `native.enabled`. Returns what kiln will run with. */
export function configureNative(opts: { enabled: boolean }): NativeStatus {
  enabled = opts.enabled;
  return nativeStatus();
}

export function nativeStatus(): NativeStatus {
  if (!enabled) return { available: false, reason: 'disabled by config (native.enabled: false)' };
  if (envDisabled()) return { available: false, reason: 'disabled by KILN_NO_NATIVE' };
  const l = load();
  return 'binding' in l ? { available: true } : { available: false, reason: l.error };
}

function binding(): Binding {
  const status = nativeStatus();
  if (!status.available) throw new NativeUnavailableError(status.reason ?? 'unknown');
  return (loaded as { binding: Binding }).binding;
}

/** An Error shaped like Node's system errors (`code: 'EADDRINUSE'`, `errno: -98`, `syscall`). */
export function errnoError(errno: number, syscall: string, extra?: string): NodeJS.ErrnoException {
  const neg = errno > 0 ? -errno : errno;
  let code: string;
  try {
    code = getSystemErrorName(neg);
  } catch {
    code = `E${-neg}`;
  }
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${code}${extra ? ` ${extra}` : ''}`);
  err.code = code;
  err.errno = neg;
  err.syscall = syscall;
  return err;
}

function rethrow(err: unknown, extra: string): never {
  const e = err as { errno?: unknown; syscall?: unknown };
  if (typeof e?.errno === 'number' && typeof e.syscall === 'string') {
    const out = errnoError(e.errno, e.syscall, extra);
    (out as { address?: string }).address = extra;
    throw out;
  }
  throw err;
}

function checkFd(fd: number, what = 'fd'): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
    throw new ValidationError(`${what} must be a file descriptor`);
}

export type ReusePortType = 'tcp4' | 'tcp6' | 'udp4' | 'udp6';

/**
 * A bound socket with SO_REUSEADDR+SO_REUSEPORT; for tcp also listening (backlog 511). Returns the
 * fd, for `net.Server.listen({ fd })` or dgram `bind({ fd })`, which then own it. `host` must be an
 * IP literal of the type's family (`::` listens on both families unless the sysctl bindv6only is set).
 * Throws an Error with `.code` = 'EADDRINUSE' etc. like Node does; KILN_ERR_NATIVE_UNAVAILABLE when
 * the addon is missing or disabled.
 */
export function reusePortSocket(opts: { type: ReusePortType; host: string; port: number }): number {
  const { type, host, port } = opts;
  const family = type.endsWith('6') ? 6 : 4;
  if (!['tcp4', 'tcp6', 'udp4', 'udp6'].includes(type))
    throw new ValidationError(`unknown socket type ${type}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ValidationError(`port ${port} out of range`);
  if (isIP(host) !== family)
    throw new ValidationError(`${host} is not an IPv${family} address (socket ${type})`);
  const b = binding();
  try {
    return b.reusePortSocket(family, type.startsWith('udp'), host, port, 511);
  } catch (err) {
    rethrow(err, family === 6 ? `[${host}]:${port}` : `${host}:${port}`);
  }
}

/** SO_BINDTODEVICE: the socket only receives from, and sends through, `ifname`. Needs CAP_NET_RAW. */
export function bindToDevice(fd: number, ifname: string): void {
  checkFd(fd);
  // IFNAMSIZ is 16 with the NUL; a longer name would be silently truncated by the kernel.
  if (ifname.length === 0 || ifname.length > 15 || ifname.includes('\0') || ifname.includes('/')) {
    throw new ValidationError(`bad interface name ${JSON.stringify(ifname)}`);
  }
  try {
    binding().bindToDevice(fd, ifname);
  } catch (err) {
    rethrow(err, ifname);
  }
}

/** A close-on-exec duplicate of `fd` (sendfile writes through one: libuv owns the original). */
export function dupFd(fd: number): number {
  checkFd(fd);
  try {
    return binding().dup(fd);
  } catch (err) {
    rethrow(err, `fd ${fd}`);
  }
}

/** Duplicate a socket's fd for sendfile; see SocketDupHandle. Throws like Node on failure. */
export function openSocketDup(socketFd: number): SocketDupHandle {
  checkFd(socketFd, 'socket fd');
  const b = binding();
  let handle: SocketDupHandle;
  try {
    handle = new b.SocketDup(socketFd);
  } catch (err) {
    rethrow(err, `fd ${socketFd}`);
  }
  openDups++;
  let closed = false;
  return {
    get fd() {
      return handle.fd;
    },
    waitWritable: (cb) => handle.waitWritable(cb),
    close: () => {
      if (closed) return;
      closed = true;
      openDups--;
      handle.close();
    },
  };
}

let openDups = 0;

/** SocketDup handles opened and not yet closed: a gauge for metrics, and how tests prove no leak. */
export function openSocketDupCount(): number {
  return openDups;
}

/** close(2) on an fd from dupFd. Errors are returned, not thrown: there is nothing to do about them. */
export function closeFd(fd: number): NodeJS.ErrnoException | null {
  const r = binding().close(fd);
  return r < 0 ? errnoError(r, 'close') : null;
}

/** sendfile's "the socket buffer is full, wait for writability". */
export const SENDFILE_AGAIN = 'again' as const;

/**
 * sendfile(2) from `inFd` at `offset` to the non-blocking socket `outFd`, at most `count` bytes.
 * Returns the bytes sent (0 means the file ended early: it shrank), or SENDFILE_AGAIN when the
 * socket buffer is full. Other failures throw a Node-shaped errno Error.
 */
export function sendfile(
  outFd: number,
  inFd: number,
  offset: number,
  count: number,
): number | typeof SENDFILE_AGAIN {
  const r = binding().sendfile(outFd, inFd, offset, count);
  if (r >= 0) return r;
  if (r === -11 /* EAGAIN == EWOULDBLOCK on Linux */) return SENDFILE_AGAIN;
  throw errnoError(r, 'sendfile');
}

/**
 * The socket's pending error (SO_ERROR), or null. A peer reset shows up in the write path as EBADF
 * or EPIPE; this names the real cause (ECONNRESET) for logs.
 */
export function socketError(fd: number): NodeJS.ErrnoException | null {
  const r = binding().socketError(fd);
  if (r === 0) return null;
  return errnoError(r, r < 0 ? 'getsockopt' : 'SO_ERROR');
}

/**
 * How a listener came to share its port: 'native' (the addon's SO_REUSEPORT fd), 'node' (Node ≥ 22.12's
 * own reusePort option), or 'plain' (an ordinary listen: only one process can hold the port).
 */
export type ReusePortMode = 'native' | 'node' | 'plain';

/** Node ≥ 22.12 (and ≥ 23.1) honour `reusePort` in net.Server.listen and dgram bind; 20 ignores it. */
function nodeHasReusePort(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

async function resolveHost(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const fam = isIP(host);
  if (fam === 4 || fam === 6) return { address: host, family: fam };
  const r = await lookup(host);
  return { address: r.address, family: r.family === 6 ? 6 : 4 };
}

/**
 * Listen on host:port so that several processes can share the port (the kernel spreads connections).
 * Uses the addon when available, else Node's reusePort where Node has it, else a plain listen; the
 * result says which, for the start-up log. Rejects with Node's listen errors (EADDRINUSE, EACCES...).
 */
export async function listenReusePort(server: Server, host: string, port: number): Promise<ReusePortMode> {
  return startReusePort(
    server,
    'tcp',
    host,
    port,
    (address): ListenOptions & { reusePort?: boolean } => ({ host: address, port }),
    (options) => server.listen(options),
  );
}

/** listenReusePort's counterpart for a UDP socket (TFTP on 69 shared by rack workers). */
export async function bindUdpReusePort(
  socket: dgram.Socket,
  host: string,
  port: number,
): Promise<ReusePortMode> {
  return startReusePort(
    socket,
    'udp',
    host,
    port,
    (address): dgram.BindOptions & { reusePort?: boolean } => ({ address, port }),
    (options) => socket.bind(options),
  );
}

/**
 * What listenReusePort and bindUdpReusePort share: pick the addon's fd, Node's reusePort or a plain
 * bind (`plain` shapes the address for net or dgram), hand it to `start`, and wait for 'listening'
 * or 'error'.
 */
async function startReusePort<O extends { reusePort?: boolean }>(
  emitter: EventEmitter,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
  plain: (address: string) => O,
  start: (options: O | { fd: number }) => void,
): Promise<ReusePortMode> {
  const { address, family } = await resolveHost(host);
  let mode: ReusePortMode;
  let options: O | { fd: number };
  let fd: number | undefined;
  if (nativeStatus().available) {
    fd = reusePortSocket({ type: `${proto}${family}`, host: address, port });
    options = { fd };
    mode = 'native';
  } else if (nodeHasReusePort()) {
    options = { ...plain(address), reusePort: true };
    mode = 'node';
  } else {
    options = plain(address);
    mode = 'plain';
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      emitter.off('listening', onListening);
      // The server or socket never adopted the fd: do not leak it.
      if (fd !== undefined) closeFd(fd);
      reject(err);
    };
    const onListening = () => {
      emitter.off('error', onError);
      resolve();
    };
    emitter.once('error', onError);
    emitter.once('listening', onListening);
    start(options);
  });
  return mode;
}

// --- raw ICMPv6 (router advertisements) ------------------------------------------------------

/** One ICMPv6 message as received: who sent it, on which interface, with what IP hop limit. */
export interface Icmp6Message {
  /** The ICMPv6 message (type, code, checksum, body); the IPv6 header is not included. */
  data: Buffer;
  /** Sender's address (`::` for a host that has no address yet). */
  from: string;
  /** The interface index it arrived on (sin6_scope_id). */
  scopeId: number;
  /** The IPv6 hop limit it arrived with; -1 if the kernel did not say. */
  hopLimit: number;
  /** Longer than the read buffer: `data` holds only its start. */
  truncated: boolean;
}

/**
 * A raw ICMPv6 socket pinned to one interface (see openIcmp6Socket). Not an EventEmitter on purpose:
 * one owner reads it, with a callback.
 */
export interface Icmp6SocketHandle {
  readonly ifname: string;
  readonly ifindex: number;
  /**
   * Calls `onMessage` for every message the filter passes, until stop()/close(). Reads until EAGAIN
   * on each readable edge. `onError` gets socket failures; reading stops after one.
   */
  start(onMessage: (m: Icmp6Message) => void, onError: (err: NodeJS.ErrnoException) => void): void;
  stop(): void;
  /** sendto(2); the kernel computes the checksum. Throws a Node-shaped errno Error on failure. */
  send(data: Uint8Array, to: string, scopeId?: number): void;
  /** Stops reading and closes the fd (on libuv's next turn). Idempotent. */
  close(): void;
}

/** Whether openIcmp6Socket can work here: the addon, and a build new enough to carry it. */
export function icmp6Status(): NativeStatus {
  const status = nativeStatus();
  if (!status.available) return status;
  if (typeof (loaded as { binding: Binding }).binding.Icmp6Socket !== 'function') {
    return {
      available: false,
      reason: 'the native addon was built before raw ICMPv6 support; run `npm run build:native`',
    };
  }
  return { available: true };
}

let openIcmp6 = 0;

/** Icmp6Socket handles opened and not yet closed (tests prove no leak with it). */
export function openIcmp6SocketCount(): number {
  return openIcmp6;
}

/**
 * A non-blocking raw ICMPv6 socket bound to `ifname` (SO_BINDTODEVICE), receiving only the ICMPv6
 * types in `passTypes` (ICMP6_FILTER; empty for a send-only socket), member of `joinGroups` on that
 * interface, and sending with IP hop limit `hopLimit` (default 255: RFC 4861 §6.1 makes receivers of
 * neighbour discovery drop anything else). Needs CAP_NET_RAW. Throws KILN_ERR_NATIVE_UNAVAILABLE
 * without the addon, ValidationError on bad arguments, a Node-shaped errno Error (ENODEV...) otherwise.
 */
export function openIcmp6Socket(opts: {
  ifname: string;
  passTypes: readonly number[];
  joinGroups?: readonly string[];
  hopLimit?: number;
  /** Read buffer size; longer messages are dropped. Default 2048 (more than any RS on Ethernet). */
  maxMessage?: number;
}): Icmp6SocketHandle {
  const { ifname } = opts;
  if (ifname.length === 0 || ifname.length > 15 || ifname.includes('\0') || ifname.includes('/')) {
    throw new ValidationError(`bad interface name ${JSON.stringify(ifname)}`);
  }
  for (const t of opts.passTypes) {
    if (!Number.isInteger(t) || t < 0 || t > 255) throw new ValidationError(`bad ICMPv6 type ${t}`);
  }
  const groups = [...(opts.joinGroups ?? [])];
  for (const g of groups) {
    if (isIP(g) !== 6 || !g.toLowerCase().startsWith('ff')) {
      throw new ValidationError(`${g} is not an IPv6 multicast address`);
    }
  }
  const hopLimit = opts.hopLimit ?? 255;
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 255) {
    throw new ValidationError(`hop limit ${hopLimit} out of range 1-255`);
  }
  const status = icmp6Status();
  if (!status.available) throw new NativeUnavailableError(status.reason ?? 'unknown');
  const Ctor = (loaded as { binding: Binding }).binding.Icmp6Socket!;
  let raw: RawIcmp6Socket;
  try {
    raw = new Ctor(ifname, [...opts.passTypes], groups, hopLimit);
  } catch (err) {
    rethrow(err, ifname);
  }
  openIcmp6++;
  const buf = Buffer.allocUnsafe(opts.maxMessage ?? 2048);
  let closed = false;
  let reading = false;
  return {
    ifname,
    ifindex: raw.ifindex,
    start(onMessage, onError) {
      if (closed) throw errnoError(9 /* EBADF */, 'recvmsg', ifname);
      reading = true;
      raw.startReading((status) => {
        if (status < 0) {
          reading = false;
          onError(errnoError(status, 'uv_poll', ifname));
          return;
        }
        // Level-triggered: read what is queued now; anything left wakes us again.
        while (reading) {
          const r = raw.recv(buf);
          if (typeof r === 'number') {
            if (r === -11 /* EAGAIN */) return;
            reading = false;
            raw.stopReading();
            onError(errnoError(r, 'recvmsg', ifname));
            return;
          }
          const [n, from, scopeId, hopLimit, truncated] = r;
          const data = Buffer.from(buf.subarray(0, Math.min(n, buf.length)));
          onMessage({ data, from, scopeId, hopLimit, truncated });
        }
      });
    },
    stop() {
      reading = false;
      if (!closed) raw.stopReading();
    },
    send(data, to, scopeId = raw.ifindex) {
      if (closed) throw errnoError(9 /* EBADF */, 'sendto', ifname);
      if (isIP(to) !== 6) throw new ValidationError(`${to} is not an IPv6 address`);
      const r = raw.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength), to, scopeId);
      if (r < 0) throw errnoError(r, 'sendto', `${to}%${ifname}`);
    },
    close() {
      if (closed) return;
      closed = true;
      reading = false;
      openIcmp6--;
      raw.close();
    },
  };
}
