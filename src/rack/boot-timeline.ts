import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Mac } from '../lib/mac.js';
import type { ArgsOf, ResultOf } from '../rpc/command.js';
import type { SendEvent } from '../rpc/commands/events.js';

/** One hop of a machine's boot (DHCP offer, TFTP loader, HTTP script, kernel fetch). */
export interface BootHop {
  mac: Mac;
  /** `dhcp.offer`, `tftp.file`, `http.script`, `http.image`, … */
  type: string;
  text: string;
  level?: 'debug' | 'info' | 'warning' | 'error';
  data?: Record<string, unknown>;
}

export type SendEventFn = (args: ArgsOf<typeof SendEvent>) => Promise<ResultOf<typeof SendEvent>>;

export interface BootTimelineOptions {
  /** Usually `(args) => regionClient.call(SendEvent, args)`. */
  send: SendEventFn;
  logger: Logger;
  now?: () => number;
  /** Hops kept per unknown MAC until the region knows the machine. */
  maxHeldPerMac?: number;
  /** How long such hops are kept. */
  holdMs?: number;
}

/**
 * Sends boot hops to the region's timeline without ever delaying the boot itself. A machine's
 * first hops (DHCP, the TFTP loader) happen before the region has created it — that happens when
 * its iPXE script is asked for — and the region records nothing for an unknown MAC. So hops the
 * region did not record are held here, briefly and bounded, and sent again once GetBootConfig has
 * answered for that MAC (`machineKnown`). Each hop carries the time it happened in `data.at`.
 */
export class BootTimeline {
  private readonly held = new Map<Mac, Array<{ hop: BootHop; at: number }>>();
  /** MACs the region has answered for, so a hop refused in a race with its creation is resent. */
  private readonly known = new Set<Mac>();
  private readonly now: () => number;
  private readonly maxHeld: number;
  private readonly holdMs: number;
  private pending = new Set<Promise<void>>();

  constructor(private readonly opts: BootTimelineOptions) {
    this.now = opts.now ?? Date.now;
    this.maxHeld = opts.maxHeldPerMac ?? 32;
    this.holdMs = opts.holdMs ?? 10 * 60_000;
  }

  /** Fire and forget: failures are logged, never thrown at the boot server. */
  record(hop: BootHop): void {
    this.track(this.deliver(hop, this.now(), true));
  }

  /** The region knows this MAC now: send what was held for it. */
  machineKnown(mac: Mac): void {
    if (!this.known.has(mac)) {
      if (this.known.size >= 4096) this.known.delete(this.known.values().next().value!);
      this.known.add(mac);
    }
    const list = this.held.get(mac);
    if (!list) return;
    this.held.delete(mac);
    const cutoff = this.now() - this.holdMs;
    for (const { hop, at } of list) if (at >= cutoff) this.track(this.deliver(hop, at, false));
  }

  /** Resolves when every send started so far has finished (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async deliver(hop: BootHop, at: number, holdIfUnknown: boolean): Promise<void> {
    try {
      const res = await this.opts.send({
        mac: hop.mac,
        type: hop.type,
        level: hop.level ?? 'info',
        text: hop.text.slice(0, 2000),
        data: { ...hop.data, at: new Date(at).toISOString() },
      });
      if (res.recorded || !holdIfUnknown) return;
      if (this.known.has(hop.mac)) await this.deliver(hop, at, false);
      else this.hold(hop, at);
    } catch (err) {
      this.opts.logger.warn({ mac: hop.mac, type: hop.type, err: describeError(err) }, 'boot event not sent');
    }
  }

  private hold(hop: BootHop, at: number): void {
    let list = this.held.get(hop.mac);
    if (!list) {
      // Bound the number of MACs too: a flood of unknown clients must not grow memory.
      if (this.held.size >= 4096) this.held.delete(this.held.keys().next().value!);
      list = [];
      this.held.set(hop.mac, list);
    }
    list.push({ hop, at });
    if (list.length > this.maxHeld) list.shift();
  }
}
