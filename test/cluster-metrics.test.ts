// Prometheus /metrics: its own listener on METRICS_PORT (never the public port), request counts and latency
// histograms by route template, in-flight, process figures and the cache's counters.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { HttpMetrics } from "../src/platform/observability/metrics.ts";
import { routeLabeler } from "../src/platform/http/route-template.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

describe("/metrics on METRICS_PORT", () => {
  let inst: RunningInstance;
  beforeAll(async () => {
    inst = await serveApp({ METRICS_ENABLED: "true", METRICS_PORT: "0", INSTANCE_ID: "metrics-1", FLY_REGION: "ams" });
  });
  afterAll(() => inst.stop());

  const scrape = async () => {
    const r = await fetch(inst.metricsUrl!);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    return r.text();
  };
  const sample = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  test("a separate listener from the public one", async () => {
    expect(inst.metricsUrl).not.toBeNull();
    const publicPort = new URL(inst.url).port;
    expect(new URL(inst.metricsUrl!).port).not.toBe(publicPort);
    expect((await fetch(`${inst.url}/metrics`)).status).toBe(404);
    expect((await fetch(inst.metricsUrl!.replace("/metrics", "/other"))).status).toBe(404);
  });

  test("counts requests by method, route template (never the id) and status, with a latency histogram", async () => {
    for (let i = 0; i < 3; i++) await fetch(`${inst.url}/health/live`);
    await fetch(`${inst.url}/api/v1/users/123`);
    await fetch(`${inst.url}/api/v1/users/456`);
    const unmatched = 'http_requests_total{method="GET",route="unmatched",status="404"}';
    const before = sample(await scrape(), unmatched) ?? 0;
    await fetch(`${inst.url}/wp-login.php`);
    const text = await scrape();
    expect(sample(text, 'http_requests_total{method="GET",route="/health/live",status="200"}')).toBe(3);
    expect(sample(text, 'http_requests_total{method="GET",route="/api/v1/users/:id",status="401"}')).toBe(2);
    expect(sample(text, unmatched)).toBe(before + 1);
    expect(text).not.toContain("/api/v1/users/123");
    expect(text).not.toContain("wp-login");
    expect(sample(text, 'http_request_duration_seconds_count{method="GET",route="/health/live",status="200"}')).toBe(3);
    expect(sample(text, 'http_request_duration_seconds_bucket{method="GET",route="/health/live",status="200",le="+Inf"}')).toBe(3);
    expect(text).toContain("# TYPE http_request_duration_seconds histogram");
  });

  test("process, instance, in-flight and cache figures", async () => {
    const text = await scrape();
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(sample(text, "process_memory_usage_percent")).toBeGreaterThan(0);
    expect(sample(text, "http_requests_in_flight")).toBe(0);
    expect(sample(text, 'instance_info{instance="metrics-1",region="ams",version="0.1.0"}')).toBe(1);
    expect(sample(text, "instance_is_primary")).toBe(1);
    expect(text).toContain("# TYPE cache_l1_hits_total counter");
    expect(sample(text, "cache_l1_misses_total")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "jobs_stats_available")).toBe(1);
    expect(sample(text, "jobs_waiting")).toBeGreaterThanOrEqual(0);
    expect(text).toContain("# TYPE jobs_completed_total counter");
  });
});

test("METRICS_ENABLED=false: no listener", async () => {
  const inst = await serveApp({ METRICS_ENABLED: "false" });
  try {
    expect(inst.metricsUrl).toBeNull();
  } finally {
    await inst.stop();
  }
});

test("route labels: templates, HEAD as GET, unknown paths bounded", () => {
  const label = routeLabeler([
    { method: "GET", path: "/health/live" },
    { method: "GET", path: "/api/v1/users/:id" },
    { method: "POST", path: "/api/v1/users/:id/posts" },
    { method: "GET", path: "/swagger/*" },
  ]);
  expect(label("GET", "/health/live")).toBe("/health/live");
  expect(label("HEAD", "/health/live")).toBe("/health/live");
  expect(label("GET", "/api/v1/users/9")).toBe("/api/v1/users/:id");
  expect(label("POST", "/api/v1/users/9/posts")).toBe("/api/v1/users/:id/posts");
  expect(label("GET", "/api/v1/users/9/posts")).toBe("unmatched");
  expect(label("GET", "/swagger/a/b.css")).toBe("/swagger/*");

  const m = new HttpMetrics();
  for (let i = 0; i < 1_500; i++) m.observe("GET", `/r${i}`, 200, 0.001);
  const out: string[] = [];
  m.render(out);
  const series = out.filter((l) => l.startsWith("http_requests_total{"));
  expect(series.length).toBeLessThanOrEqual(1_001);
  expect(series.some((l) => l.includes('route="other"'))).toBe(true);
});
