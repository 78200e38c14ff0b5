/**
 * The retransmission timeout of one transfer, learnt from its own round trips (RFC 6298's
 * estimator, applied to DATA → ACK). Pure: the caller measures and passes milliseconds in.
 *
 * Why: a fixed timeout is either long (a lost packet on a LAN stalls the transfer for a whole
 * second: 2% loss made a 512 kB lockstep download take 10+ s) or short (a slow link or a slow
 * client sees spurious repeats). Measuring gives a LAN tens of milliseconds and a slow path what
 * it needs.
 *
 * Bounds: never below `minMs` (clients that take a while to write a block, timer granularity,
 * a scheduler hiccup on a loaded rack) and never above `maxMs` (the configured timeout, which is
 * also where a transfer without samples starts, as RFC 6298 §2.1 starts at 1 s).
 */
export interface RtoBounds {
  minMs: number;
  maxMs: number;
}

/** RFC 6298 §2: α = 1/8, β = 1/4, K = 4. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export class RtoEstimator {
  private srtt: number | undefined;
  private rttvar = 0;
  private value: number;

  constructor(private readonly bounds: RtoBounds) {
    this.value = bounds.maxMs;
  }

  /** The timeout for a first transmission, before any backoff. */
  get rto(): number {
    return this.value;
  }

  /** Smoothed round trip, once there is one sample. */
  get smoothed(): number | undefined {
    return this.srtt;
  }

  /**
   * One round-trip measurement. Karn's rule is the caller's: never pass the time of a packet that
   * was sent more than once (its ACK could answer either copy).
   */
  sample(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    if (this.srtt === undefined) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - ms);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * ms;
    }
    this.value = clamp(this.srtt + K * this.rttvar, this.bounds);
  }

  /**
   * A timeout fired: double the timeout (RFC 6298 §5.5) up to `capMs`, and keep it doubled until
   * the next sample (§5.7). Keeping it matters: if the repeat was spurious (the client is slower
   * than we thought), going straight back would time out the next window too, and Karn's rule
   * would then never let a sample through to correct it. Doubling is also what lets a client's
   * own timer fire when it ignores repeated blocks (see tftp-transfer.ts).
   */
  backoff(capMs: number): void {
    this.value = Math.min(this.value * 2, Math.max(capMs, this.value));
  }
}

function clamp(ms: number, { minMs, maxMs }: RtoBounds): number {
  return Math.min(Math.max(Math.ceil(ms), minMs), maxMs);
}
