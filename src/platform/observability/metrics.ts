// Prometheus metrics of one process, served on METRICS_PORT by a listener of its own (never the public port):
// request counts and durations by method, route template and status; in-flight requests; process CPU and
// memory; and the cache's counters. Text exposition format 0.0.4, no client library.
import type { Server } from "bun";
import type { CacheStats } from "../cache/port.ts";
import type { QueueStats } from "../jobs/port.ts";
import { CpuSampler, memoryPercent } from "../cluster/process-stats.ts";
import type { BreakerView } from "../resilience/breakers.ts";

export const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Bounds the number of series, whatever paths clients send. */
const MAX_SERIES = 1_000;

/** One series (method, route, status): a request count, a duration sum and per-bucket counts. */
export class Series {
  count = 0;
  sum = 0;
  /** Requests per bucket, not cumulative: one increment per observation; render() adds them up. */
  readonly perBucket: number[] = BUCKETS.map(() => 0);
  constructor(
    readonly method: string,
    readonly route: string,
    readonly status: string,
  ) {}

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    if (i < BUCKETS.length) this.perBucket[i]!++;
  }
}

/** Request counts and latency histograms by method, route and status. */
export class HttpMetrics {
  private readonly series = new Map<string, Series>();
  /** Requests answered by the cached reads in front of the framework (src/platform/http/fast-read.ts). */
  fastPathAnswers = 0;

  /** The series of one method, route and status, to observe many times (a hot path resolves it once). */
  seriesOf(method: string, route: string, status: number): Series {
    const m = METHODS.has(method) ? method : "OTHER";
    let key = `${m} ${route} ${status}`;
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) {
        route = "other";
        key = `${m} ${route} ${status}`;
        s = this.series.get(key);
      }
      if (!s) {
        s = new Series(m, route, String(status));
        this.series.set(key, s);
      }
    }
    return s;
  }

  /** Every series added up: requests, 5xx answers and per-bucket counts (not cumulative). The history samples it. */
  totals(): { count: number; errors: number; perBucket: number[] } {
    const perBucket = BUCKETS.map(() => 0);
    let count = 0;
    let errors = 0;
    for (const s of this.series.values()) {
      count += s.count;
      if (s.status.startsWith("5")) errors += s.count;
      for (let i = 0; i < perBucket.length; i++) perBucket[i]! += s.perBucket[i]!;
    }
    return { count, errors, perBucket };
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    this.seriesOf(method, route, status).observe(seconds);
  }

  render(out: string[]): void {
    out.push("# HELP http_fast_path_answers_total Successful requests answered in front of the framework by the cached reads and declared writes (also counted in http_requests_total).");
    out.push("# TYPE http_fast_path_answers_total counter");
    out.push(`http_fast_path_answers_total ${this.fastPathAnswers}`);
    out.push("# HELP http_requests_total HTTP requests answered, by method, route template and status.");
    out.push("# TYPE http_requests_total counter");
    for (const s of this.series.values()) out.push(`http_requests_total${labels({ method: s.method, route: s.route, status: s.status })} ${s.count}`);
    out.push("# HELP http_request_duration_seconds Time to produce the response, by method, route template and status.");
    out.push("# TYPE http_request_duration_seconds histogram");
    for (const s of this.series.values()) {
      const base = { method: s.method, route: s.route, status: s.status };
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += s.perBucket[i]!;
        out.push(`http_request_duration_seconds_bucket${labels({ ...base, le: String(le) })} ${cumulative}`);
      });
      out.push(`http_request_duration_seconds_bucket${labels({ ...base, le: "+Inf" })} ${s.count}`);
      out.push(`http_request_duration_seconds_sum${labels(base)} ${s.sum}`);
      out.push(`http_request_duration_seconds_count${labels(base)} ${s.count}`);
    }
  }
}

export const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

export function metric(out: string[], name: string, type: "gauge" | "counter", help: string, value: number, l: Record<string, string> = {}) {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels(l)} ${Number.isFinite(value) ? value : 0}`);
}

/** The path of a request URL without parsing the whole URL (hot path: runs on every request). */
export function pathnameOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  let end = q < 0 ? url.length : q;
  // Elysia routes "/api/v1/auth/login/" as "/api/v1/auth/login": so must every check keyed by the path (rate
  // limits, the write lane, idempotency, the replica guard), or a trailing slash walks around it.
  while (end - start > 1 && url.charCodeAt(end - 1) === 47) end--;
  return url.slice(start, end);
}

export interface MetricsSource {
  instanceId: string;
  region: string;
  version: string;
  inFlight(): number;
  isPrimary(): boolean;
  cacheStats?(): CacheStats;
  queueStats?(): Promise<QueueStats>;
  breakers?(): BreakerView[];
  /** More families, rendered after these (job, cron, scaler figures). */
  extra?: ((out: string[]) => void | Promise<void>)[];
}

/** circuit_state's values: alert on `== 2`. */
export const CIRCUIT_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

function renderBreakers(out: string[], list: BreakerView[]): void {
  if (list.length === 0) return;
  out.push("# HELP circuit_state Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.", "# TYPE circuit_state gauge");
  for (const b of list) out.push(`circuit_state${labels({ dependency: b.dependency })} ${CIRCUIT_STATE_VALUE[b.state]}`);
  out.push("# HELP circuit_opened_total Times the circuit opened, per dependency.", "# TYPE circuit_opened_total counter");
  for (const b of list) out.push(`circuit_opened_total${labels({ dependency: b.dependency })} ${b.opened_total}`);
  out.push("# HELP circuit_rejected_total Calls refused without calling the dependency (circuit open).", "# TYPE circuit_rejected_total counter");
  for (const b of list) out.push(`circuit_rejected_total${labels({ dependency: b.dependency })} ${b.rejected}`);
  out.push("# HELP circuit_failures_total Failed calls counted by the breaker, per dependency.", "# TYPE circuit_failures_total counter");
  for (const b of list) out.push(`circuit_failures_total${labels({ dependency: b.dependency })} ${b.failures}`);
}

/** A scrape never waits longer than this on the queue's figures (Redis may be slow or down). */
const QUEUE_STATS_TIMEOUT_MS = 1_000;

async function queueFigures(src: MetricsSource): Promise<QueueStats | null> {
  if (!src.queueStats) return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      src.queueStats(),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), QUEUE_STATS_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Renders every metric of this process in the Prometheus text format. */
export function metricsRenderer(http: HttpMetrics, src: MetricsSource): () => Promise<string> {
  const cpu = new CpuSampler();
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  return async () => {
    const queue = await queueFigures(src);
    const out: string[] = [];
    http.render(out);
    metric(out, "http_requests_in_flight", "gauge", "Requests being served right now.", src.inFlight());
    metric(out, "instance_info", "gauge", "Identity of this instance (always 1).", 1, { instance: src.instanceId, region: src.region, version: src.version });
    metric(out, "instance_is_primary", "gauge", "1 on the LiteFS primary (or without LiteFS), 0 on a replica.", src.isPrimary() ? 1 : 0);
    const usage = process.cpuUsage();
    const mem = process.memoryUsage();
    metric(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", (usage.user + usage.system) / 1e6);
    metric(out, "process_cpu_usage_percent", "gauge", "CPU % of the machine (all cores = 100) since the previous scrape.", cpu.sample());
    metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", mem.rss);
    metric(out, "process_heap_used_bytes", "gauge", "JavaScript heap in use, in bytes.", mem.heapUsed);
    metric(out, "process_memory_usage_percent", "gauge", "Resident memory as % of the machine's memory.", memoryPercent());
    metric(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", startSeconds);
    const cache = src.cacheStats?.();
    if (cache) {
      metric(out, "cache_l1_items", "gauge", "Entries in the in-process cache.", cache.l1.size);
      metric(out, "cache_l1_max_items", "gauge", "Capacity of the in-process cache, in entries.", cache.l1.max_items);
      metric(out, "cache_l1_hits_total", "counter", "In-process cache hits.", cache.l1.hits);
      metric(out, "cache_l1_misses_total", "counter", "In-process cache misses.", cache.l1.misses);
      metric(out, "cache_l1_evictions_total", "counter", "In-process cache evictions.", cache.l1.evictions);
      metric(out, "cache_l2_available", "gauge", "1 while the Redis cache answers.", cache.l2.available ? 1 : 0);
      metric(out, "cache_l2_hits_total", "counter", "Redis cache hits.", cache.l2.hits);
      metric(out, "cache_l2_misses_total", "counter", "Redis cache misses.", cache.l2.misses);
      metric(out, "cache_l2_errors_total", "counter", "Redis cache errors and timeouts.", cache.l2.errors);
      metric(out, "cache_bus_published_total", "counter", "Invalidations published to other instances.", cache.bus.published);
      metric(out, "cache_bus_received_total", "counter", "Invalidations received from other instances.", cache.bus.received);
    }
    if (src.queueStats) {
      metric(out, "jobs_stats_available", "gauge", "1 when the queue's figures below could be read for this scrape.", queue ? 1 : 0);
    }
    if (queue) {
      metric(out, "jobs_waiting", "gauge", "Jobs waiting to be delivered or being run, cluster-wide.", queue.waiting);
      metric(out, "jobs_delayed", "gauge", "Jobs waiting for a retry or a delayed start.", queue.delayed);
      metric(out, "jobs_running", "gauge", "Jobs running on this instance.", queue.running_here);
      metric(out, "jobs_failed_retained", "gauge", "Failed jobs still retained.", queue.failed);
      metric(out, "jobs_completed_total", "counter", "Jobs completed (cluster-wide with Redis, this process without).", queue.completed_total);
    }
    if (src.breakers) renderBreakers(out, src.breakers());
    for (const render of src.extra ?? []) await render(out);
    return out.join("\n") + "\n";
  };
}

/** The /metrics listener. */
export function startMetricsServer(opts: { port: number; hostname: string; render: () => Promise<string> }): Server<undefined> {
  return Bun.serve({
    port: opts.port,
    hostname: opts.hostname,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path !== "/metrics" || (request.method !== "GET" && request.method !== "HEAD")) return new Response("Not Found\n", { status: 404 });
      return new Response(await opts.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    },
  });
}
