import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import { describeError, KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { CallOptions } from '../rpc/channel.js';
import type { ArgsOf, Command, ResultOf } from '../rpc/command.js';
import { Identify, Ping, RegisterRack } from '../rpc/commands/index.js';
import type { RackInterface } from '../rpc/commands/rack-registration.js';
import { type Eventloops, parseDiscovery } from '../rpc/discovery.js';
import { RpcCodes, RpcError } from '../rpc/errors.js';
import { HandlerRegistry } from '../rpc/handlers.js';
import { connectToRegion, type RegionConnection } from './region-connection.js';
import { RegionStateStore } from './region-state.js';

export interface RegionClientOptions {
  /** rack.region_urls: region HTTP URLs asked for /rpc discovery, in order. */
  regionUrls: string[];
  secret: Buffer;
  dataDir: string;
  hostname: string;
  /** Display name (rack.name); null: the host name. */
  name: string | null;
  software: string;
  logger: Logger;
  interfaces?: () => RackInterface[];
  /** Poll discovery this often while any listed worker lacks a connection, or after a change. */
  fastPollMs?: number;
  /** ... and this often when whole and nothing changed for `settleMs`. */
  slowPollMs?: number;
  settleMs?: number;
  pingMs?: number;
  /** Default timeout for calls. */
  callTimeoutMs?: number;
  /** Protocol version to announce (tests). */
  version?: number;
}

export interface WorkerLink {
  workerId: string;
  connection: RegionConnection;
  address: string;
  connectedAt: number;
  /** RegisterRack answered on this connection. */
  registered: boolean;
}

interface Events {
  /** A registered connection to this worker is up. */
  connected: [workerId: string];
  disconnected: [workerId: string];
  /** Every worker discovery lists holds a connection. */
  whole: [];
}

export function localInterfaces(): RackInterface[] {
  const out: RackInterface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs || addrs.every((a) => a.internal)) continue;
    const mac = addrs.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac.toLowerCase() ?? null;
    out.push({ name: name.slice(0, 64), mac, addresses: addrs.map((a) => a.cidr ?? a.address).slice(0, 64) });
  }
  return out.slice(0, 256);
}

/**
 * The rack's side of region RPC: finds the region workers through /rpc discovery, keeps one
 * registered connection to every one of them (any worker can then call this rack), pings them,
 * and sends calls over any live one.
 *
 * Polling: every `fastPollMs` (1 s) while a listed worker lacks a connection and for `settleMs`
 * after any change (a worker restarted elsewhere shows up within a second, not after MAAS's 30 s),
 * every `slowPollMs` (30 s) when whole and quiet. `{"eventloops": null}` keeps what we have. The
 * last list is saved so the rack reconnects even when no region HTTP answers.
 */
export class RegionClient extends EventEmitter<Events> {
  /** Rack-side commands (region → rack). Add more with `client.handlers.register(...)`. */
  readonly handlers = new HandlerRegistry('rack');
  private readonly links = new Map<string, WorkerLink>();
  private readonly opts: Required<Omit<RegionClientOptions, 'version' | 'name'>> & {
    version?: number;
    name: string | null;
  };
  private readonly store: RegionStateStore;
  private eventloops: Eventloops | null;
  private systemIdValue: string | null;
  private httpTokenValue: string | null = null;
  private ca: string | null;
  private running = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private lastChange = Date.now();
  private polling: Promise<void> | undefined;
  private registering: Promise<unknown> = Promise.resolve();
  private roundRobin = 0;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(opts: RegionClientOptions) {
    super();
    this.opts = {
      fastPollMs: 1000,
      slowPollMs: 30_000,
      settleMs: 30_000,
      pingMs: 10_000,
      callTimeoutMs: 30_000,
      interfaces: localInterfaces,
      ...opts,
    };
    this.store = new RegionStateStore(opts.dataDir, opts.logger);
    const state = this.store.load();
    this.eventloops = state.eventloops;
    this.systemIdValue = state.system_id;
    this.ca = this.store.loadCa();
    this.handlers.register(Ping, (args) =>
      args.echo === undefined ? { time: Date.now() } : { echo: args.echo, time: Date.now() },
    );
    this.handlers.register(Identify, () => ({
      system_id: this.systemIdValue,
      hostname: this.opts.hostname,
      version: this.opts.software,
    }));
  }

  /** The id the region gave this rack (null before the first registration). */
  get systemId(): string | null {
    return this.systemIdValue;
  }

  /** Bearer token for the region's HTTP endpoints racks use (image downloads). */
  get httpToken(): string | null {
    return this.httpTokenValue;
  }

  /** Worker ids this rack holds a registered connection to. */
  connectedWorkers(): string[] {
    return [...this.links.values()]
      .filter((l) => l.registered)
      .map((l) => l.workerId)
      .sort();
  }

  /** Worker ids the last discovery listed. */
  knownWorkers(): string[] {
    return Object.keys(this.eventloops ?? {}).sort();
  }

  /** True when every listed worker holds a connection. */
  isWhole(): boolean {
    const known = this.knownWorkers();
    return known.length > 0 && known.every((w) => this.links.get(w)?.registered === true);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.pollTimer);
    await this.polling;
    for (const l of this.links.values()) l.connection.channel.close();
    await Promise.allSettled([...this.pending]);
    for (const l of this.links.values()) l.connection.channel.destroy();
    this.links.clear();
  }

  /**
   * Call the region over any live connection. A call cut off by its connection closing is retried
   * once on another (all rack → region commands are safe to repeat).
   */
  async call<C extends Command>(command: C, args: ArgsOf<C>, opts: CallOptions = {}): Promise<ResultOf<C>> {
    const callOpts = { timeout: this.opts.callTimeoutMs, ...opts };
    for (let attempt = 0; ; attempt++) {
      const link = this.pick();
      if (!link) {
        throw new RpcError(RpcCodes.notConnected, `no connection to the region for ${command.name} (yet)`);
      }
      try {
        return await link.connection.channel.call(command, args, callOpts);
      } catch (err) {
        const retriable = err instanceof KilnError && err.code === RpcCodes.closed;
        if (!retriable || attempt >= 1 || opts.signal?.aborted) throw err;
      }
    }
  }

  /** Call one particular worker (tests, diagnostics). */
  callWorker<C extends Command>(workerId: string, command: C, args: ArgsOf<C>, opts: CallOptions = {}) {
    const link = this.links.get(workerId);
    if (!link)
      return Promise.reject(new RpcError(RpcCodes.notConnected, `no connection to worker ${workerId}`));
    return link.connection.channel.call(command, args, { timeout: this.opts.callTimeoutMs, ...opts });
  }

  private pick(): WorkerLink | undefined {
    const live = [...this.links.values()].filter((l) => !l.connection.channel.closed);
    if (live.length === 0) return undefined;
    this.roundRobin = (this.roundRobin + 1) % live.length;
    return live[this.roundRobin];
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      // A poll in progress reschedules itself when it ends.
      if (this.polling) return;
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        const quiet = Date.now() - this.lastChange >= this.opts.settleMs;
        this.schedule(this.isWhole() && quiet ? this.opts.slowPollMs : this.opts.fastPollMs);
      });
    }, ms);
  }

  private changed(): void {
    this.lastChange = Date.now();
  }

  private async discover(): Promise<Eventloops | null | undefined> {
    for (const base of this.opts.regionUrls) {
      const url = new URL('rpc', base.endsWith('/') ? base : `${base}/`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const doc = parseDiscovery(await res.json());
        return doc.eventloops;
      } catch (err) {
        this.opts.logger.debug({ url: url.href, err: describeError(err) }, 'region discovery failed');
      }
    }
    return undefined;
  }

  private async poll(): Promise<void> {
    const found = await this.discover();
    if (!this.running) return;
    if (found === undefined) {
      if (this.links.size === 0) {
        this.opts.logger.warn(
          { urls: this.opts.regionUrls, remembered: this.knownWorkers().length },
          'no region answered discovery; using the remembered region addresses',
        );
      }
    } else if (found !== null) {
      const before = this.knownWorkers().join(',');
      this.eventloops = found;
      if (Object.keys(found).sort().join(',') !== before) {
        this.changed();
        this.store.save({ system_id: this.systemIdValue, eventloops: found });
      }
    }
    await this.fill();
    if (this.isWhole()) this.emit('whole');
  }

  /** Open connections until every listed worker holds one (or this round's attempts run out). */
  private async fill(): Promise<void> {
    const loops = this.eventloops;
    if (!loops) return;
    const missing = () => Object.keys(loops).filter((w) => !this.links.has(w));
    const addresses = [
      ...new Map(
        Object.values(loops)
          .flat()
          .map(([h, p]) => [`${h}|${p}`, [h, p] as const]),
      ).values(),
    ];
    if (addresses.length === 0) return;
    // Each attempt reaches whichever worker the kernel picks; with N missing of M workers a few
    // rounds of N parallel attempts usually find them all.
    for (let round = 0; round < 4 && this.running; round++) {
      const want = missing();
      if (want.length === 0) return;
      const attempts = Array.from({ length: Math.min(8, want.length * 2) }, (_, i) => {
        const [host, port] = addresses[(round + i) % addresses.length]!;
        return this.attempt(host, port);
      });
      await Promise.allSettled(attempts);
    }
  }

  private async attempt(host: string, port: number): Promise<void> {
    const p = this.attemptInner(host, port);
    this.pending.add(p);
    try {
      await p;
    } finally {
      this.pending.delete(p);
    }
  }

  private async attemptInner(host: string, port: number): Promise<void> {
    const log = this.opts.logger;
    let conn: RegionConnection;
    try {
      conn = await connectToRegion({
        host,
        port,
        secret: this.opts.secret,
        ca: this.ca,
        hostname: this.opts.hostname,
        software: this.opts.software,
        handlers: this.handlers,
        logger: log,
        ...(this.opts.version !== undefined ? { version: this.opts.version } : {}),
      });
    } catch (err) {
      const code = err instanceof KilnError ? err.code : undefined;
      const level =
        code === RpcCodes.auth || code === 'KILN_ERR_RPC_CA_MISMATCH' || code === RpcCodes.version
          ? 'error'
          : 'debug';
      log[level]({ host, port, code }, `region RPC connection failed: ${describeError(err)}`);
      return;
    }
    const workerId = conn.worker.id;
    if (!this.running || this.links.has(workerId)) {
      conn.channel.close();
      return;
    }
    if (conn.learnedCa && this.ca === null) {
      // The region proved it holds the shared secret over this very TLS session: pin its CA.
      this.ca = conn.learnedCa;
      try {
        this.store.saveCa(conn.learnedCa);
        log.info({ path: this.store.caPath }, 'pinned the region CA');
      } catch (err) {
        log.warn({ err: describeError(err) }, 'could not save the region CA');
      }
    }
    // Listed at once, so parallel attempts that reach the same worker close themselves.
    const link: WorkerLink = {
      workerId,
      connection: conn,
      address: `${host}:${port}`,
      connectedAt: Date.now(),
      registered: false,
    };
    let pinger: NodeJS.Timeout | undefined;
    this.links.set(workerId, link);
    conn.channel.on('close', () => {
      if (this.links.get(workerId) === link) {
        this.links.delete(workerId);
        this.changed();
        clearInterval(pinger);
        log.info({ worker: workerId }, 'region connection lost');
        this.emit('disconnected', workerId);
        // Reconnect soon rather than at the next slow poll.
        if (this.running) this.schedule(Math.min(this.opts.fastPollMs, 200));
      }
    });
    try {
      await this.register(link);
    } catch (err) {
      log.error({ worker: workerId, err: describeError(err) }, 'rack registration failed');
      conn.channel.close();
      return;
    }
    pinger = setInterval(() => {
      conn.channel.call(Ping, {}, { timeout: Math.max(2000, this.opts.pingMs) }).catch((err) => {
        log.info({ worker: workerId, err: describeError(err) }, 'region ping failed; reconnecting');
        conn.channel.destroy();
      });
    }, this.opts.pingMs);
    pinger.unref();
    if (conn.channel.closed) {
      clearInterval(pinger);
      return;
    }
    link.registered = true;
    this.changed();
    log.info({ worker: workerId, system_id: this.systemIdValue }, 'connected to region worker');
    this.emit('connected', workerId);
  }

  /** Registrations run one at a time so a first-contact rack is created once. */
  private register(link: WorkerLink): Promise<void> {
    const run = async () => {
      const r = await link.connection.channel.call(RegisterRack, {
        system_id: this.systemIdValue,
        hostname: this.opts.hostname,
        name: this.opts.name,
        version: this.opts.software,
        interfaces: this.opts.interfaces(),
      });
      this.httpTokenValue = r.http_token;
      if (r.system_id !== this.systemIdValue) {
        this.systemIdValue = r.system_id;
        this.store.save({ system_id: r.system_id, eventloops: this.eventloops });
      }
    };
    const next = this.registering.then(run, run);
    this.registering = next.catch(() => undefined);
    return next;
  }
}
