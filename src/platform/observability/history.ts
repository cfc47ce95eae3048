// The last hour of this instance in a bounded ring, for the dashboard's charts: request rate, p50/p99 latency,
// 5xx share, L1 cache hit ratio and queue depth, one point per HISTORY step. Latency quantiles come from the
// request histogram's bucket counts over the step (linear within a bucket, as Prometheus' histogram_quantile).
import type { CacheStats } from "../cache/port.ts";
import type { QueueStats } from "../jobs/port.ts";
import { MinuteRing, quantileMs, type HistoryPoint } from "./history-summary.ts";
import type { HttpMetrics } from "./metrics.ts";

export { quantileMs, type HistoryPoint } from "./history-summary.ts";

export const HISTORY_STEP_MS = 10_000;
export const HISTORY_POINTS = 360;

export class History {
  private readonly ring: HistoryPoint[] = [];
  /** The same samples a minute at a time, in counts: what the heartbeat carries for the cluster's view. */
  readonly minutes = new MinuteRing();
  constructor(readonly capacity = HISTORY_POINTS) {}

  push(p: HistoryPoint): void {
    this.ring.push(p);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
  }

  points(): HistoryPoint[] {
    return [...this.ring];
  }
}

export interface HistorySources {
  http: HttpMetrics;
  cache?: () => CacheStats;
  queue?: () => Promise<QueueStats>;
}

/** Samples the sources every `stepMs` into `history`; stop() ends it. */
export function startHistorySampler(history: History, src: HistorySources, stepMs = HISTORY_STEP_MS): { stop(): void; sample(): Promise<void> } {
  let last = src.http.totals();
  let lastCache = src.cache?.().l1;
  let lastAt = performance.now();
  const sample = async () => {
    const now = performance.now();
    const totals = src.http.totals();
    const count = totals.count - last.count;
    const errors = totals.errors - last.errors;
    const perBucket = totals.perBucket.map((n, i) => n - last.perBucket[i]!);
    const cache = src.cache?.().l1;
    const hits = cache && lastCache ? cache.hits - lastCache.hits : 0;
    const misses = cache && lastCache ? cache.misses - lastCache.misses : 0;
    let queueDepth: number | null = null;
    if (src.queue) {
      const q = await Promise.race([src.queue().catch(() => null), Bun.sleep(1_000).then(() => null)]);
      if (q) queueDepth = q.waiting + q.delayed;
    }
    const seconds = Math.max(0.001, (now - lastAt) / 1000);
    history.minutes.add({ atMs: Date.now(), seconds, count, errors, hits, misses, queueDepth, perBucket });
    history.push({
      t: new Date().toISOString(),
      rps: Math.round((count / seconds) * 100) / 100,
      p50_ms: quantileMs(perBucket, count, 0.5),
      p99_ms: quantileMs(perBucket, count, 0.99),
      error_rate: count > 0 ? Math.round((errors / count) * 10_000) / 10_000 : null,
      cache_hit_ratio: hits + misses > 0 ? Math.round((hits / (hits + misses)) * 10_000) / 10_000 : null,
      queue_depth: queueDepth,
    });
    last = totals;
    lastCache = cache;
    lastAt = now;
  };
  const timer = setInterval(() => void sample(), stepMs);
  timer.unref?.();
  return { stop: () => clearInterval(timer), sample };
}
