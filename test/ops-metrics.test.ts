// The operator's side: /metrics of a real instance passes `promtool check metrics` and carries the job, cron,
// breaker and replica-lag families; ops/alerts.yml passes `promtool check rules` and its unit tests; the
// Grafana dashboard only asks for metrics the service exports. promtool comes from Debian's prometheus package.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryLeaseStore } from "../src/platform/cron/lease.ts";
import { MemoryRunStore } from "../src/platform/cron/runs.ts";
import { CronScheduler } from "../src/platform/cron/scheduler.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { OpsMetrics } from "../src/platform/observability/ops-metrics.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { REDIS_URL, ROOT, testPrefix, dropPrefix, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startFaultyServer, type FaultyServer } from "./support/faulty-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const PROMTOOL = "/usr/bin/promtool";
const silent = createLogger("silent");

function promtool(args: string[], stdin?: string): { code: number; out: string } {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: apt-get install prometheus (.ci/run does)`);
  const p = Bun.spawnSync([PROMTOOL, ...args], { cwd: join(ROOT, "ops"), stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin) });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

describe("/metrics of a running instance", () => {
  const prefix = testPrefix("ops-metrics");
  let mail: FaultyServer;
  let inst: RunningInstance;
  let text = "";
  beforeAll(async () => {
    mail = startFaultyServer();
    mail.set({ kind: "fail", status: 503 });
    const env = {
      REDIS_URL,
      REDIS_PREFIX: prefix,
      MAIL_API_URL: mail.url,
      JOB_MAX_RETRIES: "0",
      CRON_ENABLED: "false",
      METRICS_ENABLED: "true",
      METRICS_PORT: "0",
    };
    inst = await serveApp(env, undefined, { logger: silent });
    const res = await fetch(`${inst.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `metrics-${crypto.randomUUID().slice(0, 6)}@example.com`, password: "correct-horse", full_name: "M" }),
    });
    expect(res.status).toBe(201);
    text = await waitUntil(async () => {
      const t = await (await fetch(inst.metricsUrl!)).text();
      // The per-type gauges come from the queue's own bookkeeping, which can trail the job counters a little.
      const settled = t.includes('job_failures_total{type="send_welcome_email",outcome="failed"} 1') && t.includes('outcome="completed"');
      const gauges = [/^jobs_by_type\{type="send_welcome_email",state="failed"\} 1$/m, /^jobs_by_type\{type="send_welcome_email",state="waiting"\} 0$/m, /^jobs_by_type_complete 1$/m];
      return settled && gauges.every((g) => g.test(t)) ? t : null;
    }, 15_000, "the registration's jobs in /metrics");
  });
  afterAll(async () => {
    await inst?.stop();
    await mail.close();
    const r = await redisClient();
    await dropPrefix(r, prefix);
    await r.close();
  });

  test("passes promtool check metrics", () => {
    const { code, out } = promtool(["check", "metrics"], text);
    expect(out).toBe("");
    expect(code).toBe(0);
  });

  test("has job durations and failures by type, breaker states, replica lag, SQLite write time", () => {
    expect(text).toMatch(/^job_duration_seconds_bucket\{type="process_user_analytics",outcome="completed",le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^job_duration_seconds_count\{type="send_welcome_email",outcome="failed"\} 1$/m);
    expect(text).toContain('circuit_state{dependency="mail_api"} 0');
    expect(text).toContain('circuit_state{dependency="redis_l2"} 0');
    expect(text).toMatch(/^replica_lag_seconds 0$/m);
    // Each instance's lag as its heartbeat carried it (this one is the primary: 0).
    expect(text).toMatch(/^instance_replica_lag_seconds\{instance_id="[^"]+",region="[^"]+"\} 0$/m);
    expect(text).toContain("# TYPE cron_runs_total counter");
    // The registration wrote the database: its write transactions are timed.
    expect(text).toMatch(/^sqlite_write_transaction_seconds_count\{result="ok"\} [1-9]\d*$/m);
  });

  test("has the queue's jobs per type and state (the failed welcome mail is retained)", () => {
    expect(text).toContain("# TYPE jobs_by_type gauge");
    expect(text).toMatch(/^jobs_by_type\{type="send_welcome_email",state="failed"\} 1$/m);
    expect(text).toMatch(/^jobs_by_type\{type="send_welcome_email",state="waiting"\} 0$/m);
    expect(text).toMatch(/^jobs_by_type_complete 1$/m);
  });

  test("the Grafana dashboard asks only for metrics this output has (or Prometheus's own `up`)", () => {
    const dash = JSON.parse(readFileSync(join(ROOT, "ops/grafana-dashboard.json"), "utf8"));
    const names = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap(([, n, type]) => (type === "histogram" ? [`${n}_bucket`, `${n}_sum`, `${n}_count`] : [n!])));
    names.add("up");
    const exprs: string[] = dash.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const e of exprs) {
      const used = [...e.matchAll(/\b([a-z_]+)\{/g)].map((m) => m[1]!).filter((n) => !["by", "sum", "rate", "max", "count", "increase"].includes(n));
      for (const n of used) expect({ expr: e, metric: n, known: names.has(n) || n === "scaler_decisions_total" }).toEqual({ expr: e, metric: n, known: true });
    }
  });
});

describe("cron runs in the metrics", () => {
  test("each run is counted by schedule and status", async () => {
    const metrics = new OpsMetrics();
    let calls = 0;
    const cron = new CronScheduler<null>({
      schedules: [
        { name: "every_second_ok", pattern: "* * * * * *", writesDb: false, run: async () => void calls++ },
        { name: "every_second_bad", pattern: "* * * * * *", writesDb: false, run: async () => Promise.reject(new Error("boom")) },
      ],
      leases: new MemoryLeaseStore(),
      runs: new MemoryRunStore(),
      instanceId: "i1",
      canWrite: () => true,
      leaseMs: 5_000,
      shutdownGraceMs: 1_000,
      logger: silent,
      onRun: metrics.onCronRun,
    });
    cron.start(null);
    await waitUntil(() => metrics.cronRuns.get({ schedule: "every_second_bad", status: "failed" }) >= 1 && calls >= 1, 5_000, "two runs");
    await cron.close();
    const out: string[] = [];
    metrics.render(out);
    expect(out.join("\n")).toMatch(/^cron_runs_total\{schedule="every_second_ok",status="completed"\} [1-9]/m);
    expect(out.join("\n")).toMatch(/^cron_runs_total\{schedule="every_second_bad",status="failed"\} [1-9]/m);
  });
});

describe("ops/alerts.yml", () => {
  test("passes promtool check rules", () => {
    const { code, out } = promtool(["check", "rules", "alerts.yml"]);
    expect(out).toContain("SUCCESS");
    expect(code).toBe(0);
  });

  test("its unit tests pass (promtool test rules ops/alerts.test.yml)", () => {
    const { code, out } = promtool(["test", "rules", "alerts.test.yml"]);
    expect(out).toContain("SUCCESS");
    expect(code).toBe(0);
  });

  test("covers instance down, error rate, p99, backlog, failed jobs, replica lag and open breakers", () => {
    const rules = readFileSync(join(ROOT, "ops/alerts.yml"), "utf8");
    for (const name of ["InstanceDown", "HighErrorRate", "HighLatencyP99", "QueueBacklog", "JobsFailing", "ReplicaLagging", "CircuitOpen"]) {
      expect(rules).toContain(`alert: ${name}`);
    }
  });
});
