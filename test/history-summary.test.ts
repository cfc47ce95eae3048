// The last hour a heartbeat carries: per-minute counts in a bounded ring, encoded compactly, decoded defensively,
// and added up over instances into the cluster's history (rates and counts summed, quantiles from summed buckets).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { clusterPoints, decodeSummary, MinuteRing, SUMMARY_MAX_CHARS, SUMMARY_POINTS, summaryPoints } from "../src/platform/observability/history-summary.ts";
import { BUCKETS } from "../src/platform/observability/metrics.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const MIN = 60_000;
const T0 = Math.floor(Date.UTC(2026, 11, 2, 9, 0) / MIN) * MIN;
const bucketsAt = (i: number, n: number) => BUCKETS.map((_, k) => (k === i ? n : 0));
const sample = (atMs: number, over: Partial<Parameters<MinuteRing["add"]>[0]> = {}) => ({
  atMs, seconds: 10, count: 100, errors: 0, hits: 0, misses: 0, queueDepth: null, perBucket: bucketsAt(0, 100), ...over,
});

describe("one instance", () => {
  test("samples of a minute add up; the points cover the last hour, null where nothing was sent", () => {
    const ring = new MinuteRing();
    // Minute 0: six samples of 10 s, 100 requests each, 5 errors each, all under 1 ms; minute 2: one sample.
    for (let k = 0; k < 6; k++) ring.add(sample(T0 + k * 10_000, { errors: 5, hits: 30, misses: 10, queueDepth: k }));
    ring.add(sample(T0 + 2 * MIN, { count: 20, seconds: 10, perBucket: bucketsAt(4, 20) }));
    const pts = summaryPoints(decodeSummary(ring.encode()), T0 + 2 * MIN + 30_000);
    expect(pts).toHaveLength(SUMMARY_POINTS);
    const [m0, m1, m2] = pts.slice(-3);
    expect(m0).toMatchObject({ t: new Date(T0).toISOString(), rps: 10, error_rate: 0.05, cache_hit_ratio: 0.75, queue_depth: 5 });
    expect(m0!.p50_ms).toBeLessThanOrEqual(1);
    expect(m1).toEqual({ t: new Date(T0 + MIN).toISOString(), rps: null, p50_ms: null, p99_ms: null, error_rate: null, cache_hit_ratio: null, queue_depth: null });
    // 20 requests in 10 s sampled, all in the fifth bucket (10 to 25 ms).
    expect(m2).toMatchObject({ rps: 2, error_rate: 0, cache_hit_ratio: null, queue_depth: null });
    expect(m2!.p50_ms).toBeGreaterThan(BUCKETS[3]! * 1000);
    expect(m2!.p50_ms).toBeLessThanOrEqual(BUCKETS[4]! * 1000);
    expect(pts.slice(0, -3).every((p) => p.rps === null)).toBe(true);
  });

  test("bounded: after hours of samples it keeps the last hour, and the text stays under the limit", () => {
    const ring = new MinuteRing();
    for (let k = 0; k < 6 * 60 * 3; k++) {
      ring.add(sample(T0 + k * 10_000, { count: 123_456, errors: 1_234, hits: 99_999, misses: 9_999, queueDepth: 12_345, perBucket: BUCKETS.map(() => 9_999) }));
    }
    const text = ring.encode()!;
    expect(text.length).toBeLessThan(SUMMARY_MAX_CHARS);
    const minutes = decodeSummary(text);
    expect(minutes.size).toBe(SUMMARY_POINTS);
    const end = T0 + 3 * 60 * MIN;
    expect(summaryPoints(minutes, end - 1).filter((p) => p.rps !== null)).toHaveLength(SUMMARY_POINTS);
  });

  test("an unreadable, foreign or oversized summary reads as nothing", () => {
    for (const bad of [null, "", "{", "[]", '{"v":2,"m":1,"p":[]}', '{"v":1,"m":"x","p":[]}', '{"v":1,"m":1,"p":[[1,2]]}', "x".repeat(SUMMARY_MAX_CHARS + 1)]) {
      expect(decodeSummary(bad).size).toBe(0);
    }
  });
});

test("the cluster: rates, requests and errors add up, the quantiles come from the summed buckets, the queue is the largest seen", () => {
  const fast = new MinuteRing();
  const slow = new MinuteRing();
  fast.add(sample(T0, { count: 90, errors: 0, perBucket: bucketsAt(0, 90), queueDepth: 3, hits: 9, misses: 1 }));
  slow.add(sample(T0, { count: 10, errors: 10, perBucket: bucketsAt(9, 10), queueDepth: 4, hits: 0, misses: 10 }));
  const [point] = clusterPoints([decodeSummary(fast.encode()), decodeSummary(slow.encode())], T0 + 30_000).slice(-1);
  expect(point).toMatchObject({ rps: 10, error_rate: 0.1, cache_hit_ratio: 0.45, queue_depth: 4 });
  // 90 of 100 requests under 1 ms: p50 there; the slowest 10 % (0.5 to 1 s) make the p99.
  expect(point!.p50_ms).toBeLessThanOrEqual(1);
  expect(point!.p99_ms).toBeGreaterThan(500);
  // An instance that sent nothing for a minute leaves the others' figures as they are.
  const [alone] = clusterPoints([decodeSummary(fast.encode()), new Map()], T0 + 30_000).slice(-1);
  expect(alone).toMatchObject({ rps: 9, error_rate: 0, queue_depth: 3 });
});
