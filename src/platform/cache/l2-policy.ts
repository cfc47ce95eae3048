// Whether an L1 miss asks the L2 (Redis) before it loads from the local database. With LiteFS every region
// has its own replica, and a read from it costs about a millisecond; the L2 lives with the global Redis, one
// round trip away, which in a far region is a hundred times that. So the L2 is asked only while it is expected
// to pay: its measured round trip below the measured load time it would save (weighted by how often it hits).
// The round trip is sampled in the background (a PING at an interval) as well as on every L2 read, so a region
// that skips the L2 keeps knowing what it would cost and starts using it again when the hop gets cheap.
// Skipping is as coherent as L1 alone: the bus still drops stale L1 entries, and nothing is written to L2 from
// a load that did not read the tag tokens.

export type L2Mode = "adaptive" | "always";

export interface L2PolicyStats {
  mode: L2Mode;
  using_l2: boolean;
  l2_rtt_ms: number | null;
  load_ms: number | null;
  l2_hit_ratio: number;
  skipped: number;
}

export interface L2Policy {
  useL2(): boolean;
  /** One L2 read: how long it took, and whether it answered with a fresh entry. */
  observeL2(ms: number, ok: boolean, hit: boolean): void;
  observeLoad(ms: number): void;
  start(): void;
  stop(): void;
  stats(): L2PolicyStats;
}

export const alwaysL2: L2Policy = {
  useL2: () => true,
  observeL2: () => {},
  observeLoad: () => {},
  start: () => {},
  stop: () => {},
  stats: () => ({ mode: "always", using_l2: true, l2_rtt_ms: null, load_ms: null, l2_hit_ratio: 1, skipped: 0 }),
};

/** Until a load has been timed, what a local read is taken to cost. */
const ASSUMED_LOAD_MS = 1;
const ALPHA = 0.2;

export interface AdaptiveOptions {
  /** One cheap round trip on the L2's connection (PING); rejects on timeout or error. */
  probe: () => Promise<unknown>;
  probeIntervalMs?: number;
  /** What a failed read or probe counts as (the L2 timeout: that is what it cost). */
  failureMs: number;
}

export class AdaptiveL2Policy implements L2Policy {
  private l2Ms: number | null = null;
  private loadMs: number | null = null;
  private hitRatio = 1;
  private skipped = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private probing = false;

  constructor(private readonly o: AdaptiveOptions) {}

  useL2(): boolean {
    // Unknown cost: the local read is always safe, so start without the L2 until the first probe says.
    if (this.l2Ms === null) {
      this.skipped++;
      return false;
    }
    const use = this.l2Ms < this.hitRatio * (this.loadMs ?? ASSUMED_LOAD_MS);
    if (!use) this.skipped++;
    return use;
  }

  observeL2(ms: number, ok: boolean, hit: boolean): void {
    this.l2Ms = ewma(this.l2Ms, ok ? ms : Math.max(ms, this.o.failureMs));
    if (ok) this.hitRatio = this.hitRatio * (1 - ALPHA) + (hit ? ALPHA : 0);
  }

  observeLoad(ms: number): void {
    this.loadMs = ewma(this.loadMs, ms);
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.o.probeIntervalMs ?? 2_000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  stats(): L2PolicyStats {
    return {
      mode: "adaptive",
      using_l2: this.l2Ms !== null && this.l2Ms < this.hitRatio * (this.loadMs ?? ASSUMED_LOAD_MS),
      l2_rtt_ms: this.l2Ms,
      load_ms: this.loadMs,
      l2_hit_ratio: this.hitRatio,
      skipped: this.skipped,
    };
  }

  private async sample(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const t0 = performance.now();
    try {
      await this.o.probe();
      this.l2Ms = ewma(this.l2Ms, performance.now() - t0);
    } catch {
      this.l2Ms = ewma(this.l2Ms, Math.max(performance.now() - t0, this.o.failureMs));
    } finally {
      this.probing = false;
    }
  }
}

const ewma = (prev: number | null, x: number) => (prev === null ? x : prev * (1 - ALPHA) + x * ALPHA);
