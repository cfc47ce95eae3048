// The last hour of an instance at one point a minute, compact enough to ride on every heartbeat, so any instance
// can show the history of every other and of the cluster from its own copy of the heartbeat table. A point keeps
// counts, not ratios (seconds sampled, requests, 5xx, L1 hits, L1 misses, queue depth, requests per latency
// bucket), so the cluster's figures are sums and its quantiles come from the summed buckets.
import { BUCKETS } from "./metrics.ts";

export interface HistoryPoint {
  t: string;
  /** Null only in a minute's point where the instance reported nothing (history-summary.ts). */
  rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  error_rate: number | null;
  cache_hit_ratio: number | null;
  queue_depth: number | null;
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

export const SUMMARY_STEP_MS = 60_000;
export const SUMMARY_POINTS = 60;
/** A summary longer than this is refused at the /internal route and ignored when read. */
export const SUMMARY_MAX_CHARS = 16_384;

/** What one history step adds to its minute. */
export interface RawSample {
  atMs: number;
  seconds: number;
  count: number;
  errors: number;
  hits: number;
  misses: number;
  queueDepth: number | null;
  perBucket: readonly number[];
}

/** [seconds, requests, errors, hits, misses, queue depth or -1, per-bucket counts (trailing zeros cut)]. */
type Tuple = [number, number, number, number, number, number, number[]];

interface Minute {
  m: number;
  s: number;
  n: number;
  e: number;
  h: number;
  mi: number;
  q: number;
  b: number[];
}

/** A bounded ring of per-minute counts (the last SUMMARY_POINTS minutes). */
export class MinuteRing {
  private readonly minutes: Minute[] = [];

  add(x: RawSample): void {
    const m = Math.floor(x.atMs / SUMMARY_STEP_MS);
    let cur = this.minutes[this.minutes.length - 1];
    if (!cur || cur.m !== m) {
      cur = { m, s: 0, n: 0, e: 0, h: 0, mi: 0, q: -1, b: [] };
      this.minutes.push(cur);
      if (this.minutes.length > SUMMARY_POINTS) this.minutes.splice(0, this.minutes.length - SUMMARY_POINTS);
    }
    cur.s += x.seconds;
    cur.n += x.count;
    cur.e += x.errors;
    cur.h += x.hits;
    cur.mi += x.misses;
    if (x.queueDepth !== null) cur.q = Math.max(cur.q, x.queueDepth);
    x.perBucket.forEach((v, i) => (cur.b[i] = (cur.b[i] ?? 0) + v));
  }

  /** The JSON the heartbeat carries: {v, m: first minute (Unix minutes), p: one tuple or null per minute}. */
  encode(): string | null {
    if (this.minutes.length === 0) return null;
    const first = this.minutes[0]!.m;
    const p: (Tuple | null)[] = [];
    for (const x of this.minutes) {
      p[x.m - first] = [Math.round(x.s * 10) / 10, x.n, x.e, x.h, x.mi, x.q, trimZeros(x.b)];
    }
    for (let i = 0; i < p.length; i++) p[i] ??= null;
    return JSON.stringify({ v: 1, m: first, p });
  }
}

const trimZeros = (b: number[]) => {
  let end = b.length;
  while (end > 0 && !b[end - 1]) end--;
  return b.slice(0, end).map((v) => v ?? 0);
};

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= -1;

/** Minute index to counts, from a summary; an unreadable summary (or one from another version) gives nothing. */
export function decodeSummary(text: string | null | undefined): Map<number, Minute> {
  const out = new Map<number, Minute>();
  if (!text || text.length > SUMMARY_MAX_CHARS) return out;
  let doc: { v?: unknown; m?: unknown; p?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  if (doc?.v !== 1 || !Number.isInteger(doc.m) || !Array.isArray(doc.p)) return out;
  doc.p.slice(0, SUMMARY_POINTS).forEach((t: unknown, i: number) => {
    if (!Array.isArray(t) || t.length !== 7 || !t.slice(0, 6).every(isCount) || !Array.isArray(t[6]) || !t[6].every(isCount)) return;
    const [s, n, e, h, mi, q, b] = t as Tuple;
    out.set((doc.m as number) + i, { m: (doc.m as number) + i, s, n, e, h, mi, q, b });
  });
  return out;
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

function point(m: number, x: Omit<Minute, "m" | "s"> & { rps: number } | undefined): HistoryPoint {
  const t = new Date(m * SUMMARY_STEP_MS).toISOString();
  if (!x) return { t, rps: null, p50_ms: null, p99_ms: null, error_rate: null, cache_hit_ratio: null, queue_depth: null };
  return {
    t,
    rps: round(x.rps, 2),
    p50_ms: quantileMs(x.b, x.n, 0.5),
    p99_ms: quantileMs(x.b, x.n, 0.99),
    error_rate: x.n > 0 ? round(x.e / x.n, 4) : null,
    cache_hit_ratio: x.h + x.mi > 0 ? round(x.h / (x.h + x.mi), 4) : null,
    queue_depth: x.q >= 0 ? x.q : null,
  };
}

/** The last SUMMARY_POINTS minutes up to `nowMs`, one point each (all null where the instance sent nothing). */
export function summaryPoints(minutes: Map<number, Minute>, nowMs = Date.now()): HistoryPoint[] {
  const last = Math.floor(nowMs / SUMMARY_STEP_MS);
  const out: HistoryPoint[] = [];
  for (let m = last - SUMMARY_POINTS + 1; m <= last; m++) {
    const x = minutes.get(m);
    out.push(point(m, x && x.s > 0 ? { ...x, rps: x.n / x.s } : undefined));
  }
  return out;
}

/**
 * The cluster's last hour from every instance's minutes: request rates, requests, errors, hits and latency
 * buckets add up; the queue depth is the largest reported (with Redis every instance sees the same queue).
 */
export function clusterPoints(all: readonly Map<number, Minute>[], nowMs = Date.now()): HistoryPoint[] {
  const last = Math.floor(nowMs / SUMMARY_STEP_MS);
  const out: HistoryPoint[] = [];
  for (let m = last - SUMMARY_POINTS + 1; m <= last; m++) {
    let sum: (Omit<Minute, "m" | "s"> & { rps: number }) | undefined;
    for (const minutes of all) {
      const x = minutes.get(m);
      if (!x || x.s <= 0) continue;
      sum ??= { rps: 0, n: 0, e: 0, h: 0, mi: 0, q: -1, b: [] };
      sum.rps += x.n / x.s;
      sum.n += x.n;
      sum.e += x.e;
      sum.h += x.h;
      sum.mi += x.mi;
      sum.q = Math.max(sum.q, x.q);
      x.b.forEach((v, i) => (sum!.b[i] = (sum!.b[i] ?? 0) + v));
    }
    out.push(point(m, sum));
  }
  return out;
}
