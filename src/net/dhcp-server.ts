import dgram from 'node:dgram';
import { describeError, isKilnError } from '../lib/errors.js';
import { intToIp } from '../lib/ipv4.js';
import type { Logger } from '../lib/logger.js';
import { decodePacket, EncodeError, encodePacket } from '../protocols/dhcp4/packet.js';
import type { DhcpPolicy, LeaseStore } from './dhcp-policy.js';
import { DhcpResponder, type Outbound } from './dhcp-responder.js';

/**
 * What the DHCP server needs from the native addon (src/native): a bound UDP socket fd and
 * SO_BINDTODEVICE on it, so each served interface has its own socket on port 67.
 */
export interface DhcpNative {
  reusePortSocket(o: { type: 'udp4'; host: string; port: number }): number;
  bindToDevice(fd: number, ifname: string): void;
}

/** A dgram socket bound to host:port, pinned to `ifname` when the addon is there. */
export async function bindDhcpSocket(
  native: DhcpNative | null | undefined,
  ifname: string,
  host: string,
  port: number,
): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  let options: dgram.BindOptions = { port, address: host, exclusive: true };
  if (native) {
    // Pin before the socket can receive anything: a packet from another interface never reaches it.
    const fd = native.reusePortSocket({ type: 'udp4', host, port });
    native.bindToDevice(fd, ifname);
    options = { fd, exclusive: true };
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setBroadcast(true);
  return socket;
}

export interface DhcpServerOptions {
  /**
   * Interfaces to serve. With `bindToDevice` each gets its own socket pinned to it, so a reply leaves
   * through the interface its request came in on. Without it only one interface can be served, on a
   * socket bound to 0.0.0.0 (the kernel routes broadcasts by its own table).
   */
  interfaces: string[];
  /** 0.0.0.0 unless a test binds elsewhere. */
  host?: string;
  port: number;
  /** PXE boot-server port (4011); null: not served. */
  proxyPort: number | null;
  policy: DhcpPolicy;
  leases: LeaseStore;
  logger: Logger;
  native?: DhcpNative | null;
  clock?: () => number;
}

export interface DhcpServerStats {
  received: number;
  dropped: number;
  sent: number;
}

interface Bound {
  ifname: string;
  port: number;
  bootServer: boolean;
  socket: dgram.Socket;
}

/**
 * The DHCP server: sockets, decoding, reply addressing and group commit. One process, one socket
 * per served interface (DHCP broadcasts cannot be spread over SO_REUSEPORT workers: every worker
 * would see every DISCOVER).
 */
export class DhcpServer {
  readonly stats: DhcpServerStats = { received: 0, dropped: 0, sent: 0 };
  private readonly sockets: Bound[] = [];
  private readonly responder: DhcpResponder;
  private readonly log: Logger;
  private pending: Array<{ out: Outbound; socket: dgram.Socket }> = [];
  private flushScheduled = false;

  constructor(private readonly opts: DhcpServerOptions) {
    this.log = opts.logger;
    this.responder = new DhcpResponder(opts.policy, opts.leases, opts.logger, opts.clock);
  }

  async start(): Promise<void> {
    const { interfaces, native } = this.opts;
    if (interfaces.length > 1 && !native) {
      throw new Error(
        `DHCP: serving ${interfaces.length} interfaces needs SO_BINDTODEVICE from the native addon, which is not available; ` +
          'serve one interface (rack.dhcp.interfaces) or build the addon',
      );
    }
    try {
      for (const ifname of interfaces) {
        this.sockets.push(await this.open(ifname, this.opts.port, false));
        if (this.opts.proxyPort !== null)
          this.sockets.push(await this.open(ifname, this.opts.proxyPort, true));
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Local ports actually bound (tests bind port 0). */
  ports(): Array<{ ifname: string; port: number }> {
    return this.sockets.map((b) => ({ ifname: b.ifname, port: b.socket.address().port }));
  }

  private async open(ifname: string, port: number, bootServer: boolean): Promise<Bound> {
    const socket = await bindDhcpSocket(this.opts.native, ifname, this.opts.host ?? '0.0.0.0', port);
    // A PXE storm (a rack of machines powered on together) arrives in bursts longer than one turn of
    // the event loop; 1 MiB absorbs them. Much more only queues requests past the clients' retry
    // timers (8 MiB raised the benchmark's latency to 300 ms and its drops with it).
    try {
      socket.setRecvBufferSize(1 << 20);
    } catch (err) {
      this.log.debug({ err: describeError(err) }, 'DHCP: could not enlarge socket buffers');
    }
    const bound: Bound = { ifname, port, bootServer, socket };
    socket.on('message', (msg, rinfo) => this.onMessage(bound, msg, rinfo));
    socket.on('error', (err) => this.log.error({ err, ifname }, 'DHCP socket error'));
    return bound;
  }

  private onMessage(b: Bound, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.received++;
    let out: Outbound | null;
    try {
      const packet = decodePacket(msg);
      const address = rinfo.address.split('.').reduce((n, x) => n * 256 + Number(x), 0) >>> 0;
      out = this.responder.handle({
        packet,
        ifname: b.ifname,
        localPort: b.bootServer ? 4011 : 67,
        source: { address, port: rinfo.port },
      });
    } catch (err) {
      this.stats.dropped++;
      if (isKilnError(err)) {
        this.log.debug(
          { from: rinfo.address, code: err.code, why: err.message },
          'DHCP: malformed request dropped',
        );
      } else {
        this.log.error({ err, from: rinfo.address }, 'DHCP: error handling request');
      }
      return;
    }
    // Every request may have changed a lease (RELEASE and DECLINE too): flush once this turn ends.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (!out) return;
    if (out.afterFlush) this.pending.push({ out, socket: b.socket });
    else this.send(b.socket, out);
  }

  /** Group commit: make this turn's leases durable, then send the ACKs that promised them. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    try {
      this.opts.leases.flush();
    } catch (err) {
      // Never ACK a lease we could not store; clients retry and the next flush may succeed.
      this.log.error({ err: describeError(err), count: batch.length }, 'DHCP: lease store flush failed');
      return;
    }
    for (const { out, socket } of batch) this.send(socket, out);
  }

  private send(socket: dgram.Socket, out: Outbound): void {
    let bytes: Buffer;
    try {
      bytes = encodePacket(out.packet, out.maxSize);
    } catch (err) {
      if (!(err instanceof EncodeError)) throw err;
      this.log.error({ why: err.message }, 'DHCP: reply does not fit the client; not sent');
      return;
    }
    this.stats.sent++;
    socket.send(bytes, out.to.port, intToIp(out.to.address), (err) => {
      if (err) this.log.warn({ err: err.message, to: intToIp(out.to.address) }, 'DHCP: send failed');
    });
  }

  async stop(): Promise<void> {
    if (this.pending.length > 0) this.flush();
    const all = this.sockets.splice(0);
    await Promise.all(all.map((b) => new Promise<void>((resolve) => b.socket.close(() => resolve()))));
  }
}
