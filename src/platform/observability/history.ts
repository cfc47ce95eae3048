// The last hour of this instance in a bounded ring, for the dashboard's charts: request rate, p50/p99 latency,
// 5xx share, L1 cache hit ratio and queue depth, one point per HISTORY step. Latency quantiles come from the
// request histogram's bucket counts over the step (linear within a bucket, as Prometheus' histogram_quantile).
import type { CacheStats } from "../cache/port.ts";
import type { QueueStats } from "../jobs/port.ts";
import { BUCKETS, type HttpMetrics } from "./metrics.ts";

export const HISTORY_STEP_MS = 10_000;
export const HISTORY_POINTS = 360;

export interface HistoryPoint {
  t: string;
  rps: number;
  p50_ms: number | null;
  p99_ms: number | null;
  error_rate: number | null;
  cache_hit_ratio: number | null;
  queue_depth: number | null;
}

export class History {
  private readonly ring: HistoryPoint[] = [];
  constructor(readonly capacity = HISTORY_POINTS) {}

  push(p: HistoryPoint): void {
    this.ring.push(p);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
  }

  points(): HistoryPoint[] {
    return [...this.ring];
  }
}

/** The q-quantile in milliseconds from per-bucket counts (not cumulative); null without observations. */
export function quantileMs(perBucket: readonly number[], total: number, q: number): number | null {
  if (total <= 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < BUCKETS.length; i++) {
    const before = cumulative;
    cumulative += perBucket[i] ?? 0;
    if (cumulative >= rank) {
      const lower = i === 0 ? 0 : BUCKETS[i - 1]!;
      const upper = BUCKETS[i]!;
      const within = (perBucket[i] ?? 0) === 0 ? 1 : (rank - before) / perBucket[i]!;
      return Math.round((lower + (upper - lower) * within) * 1000 * 100) / 100;
    }
  }
  return BUCKETS[BUCKETS.length - 1]! * 1000;
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
