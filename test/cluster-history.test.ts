// Each heartbeat carries the instance's replica lag and last hour: the primary stores what a replica sends over
// /internal (and a replica falls back to the older body when a primary of the previous version refuses the new
// fields); /cluster/stats shows each instance's lag, /admin/operations each instance's and the cluster's hour.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { listInstances } from "../src/platform/cluster/instances.ts";
import { registryWriter } from "../src/platform/cluster/registry.ts";
import type { Role } from "../src/platform/cluster/role.ts";
import { MinuteRing, SUMMARY_MAX_CHARS } from "../src/platform/observability/history-summary.ts";
import { BUCKETS } from "../src/platform/observability/metrics.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const TOKEN = "internal-token-0123456789";
const ADMIN = { email: "history-admin@example.com", password: "history-admin-password" };

function summary(rps: number): string {
  const ring = new MinuteRing();
  ring.add({ atMs: Date.now(), seconds: 10, count: rps * 10, errors: 0, hits: 0, misses: 0, queueDepth: 0, perBucket: BUCKETS.map((_, i) => (i === 0 ? rps * 10 : 0)) });
  return ring.encode()!;
}

describe("beats with lag and history", () => {
  let t: TestApp;
  let admin: string;
  beforeAll(async () => {
    t = await makeApp({ INTERNAL_TOKEN: TOKEN, INSTANCE_ID: "the-primary", ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, CRON_ENABLED: "false" });
    admin = await t.login(ADMIN.email, ADMIN.password);
  });
  afterAll(() => t.close());
  const body = {
    region: "syd", role: "replica", host: "r1", port: 8081, version: "0.1.0",
    started_at: "2024-01-01T00:00:00.000Z", in_flight: 1, cpu_percent: 2, memory_percent: 3,
  };
  const put = (id: string, b: object) => t.json("PUT", `/internal/instances/${id}`, { body: b, headers: { authorization: `Bearer ${TOKEN}` } });

  test("stored from /internal, shown per instance in /cluster/stats and /admin/operations, added up for the cluster", async () => {
    expect((await put("syd-a", { ...body, replica_lag_seconds: 2.345, history: summary(5) })).status).toBe(204);
    expect((await put("syd-b", { ...body, host: "r2", replica_lag_seconds: 0.5, history: summary(7) })).status).toBe(204);
    const rows = await listInstances(t.deps.database.db);
    expect(rows.find((r) => r.id === "syd-a")).toMatchObject({ replicaLagSeconds: 2.345 });

    const stats = await t.json("GET", "/cluster/stats", { token: admin });
    expect(stats.status).toBe(200);
    const lag = Object.fromEntries(stats.body.instances.map((i: { id: string; replica_lag_seconds: number | null }) => [i.id, i.replica_lag_seconds]));
    expect(lag).toMatchObject({ "syd-a": 2.35, "syd-b": 0.5 });

    const ops = await t.json("GET", "/api/v1/admin/operations", { token: admin });
    expect(ops.status).toBe(200);
    const h = ops.body.cluster_history;
    expect(h.step_seconds).toBe(60);
    const ids = h.instances.map((i: { id: string }) => i.id);
    expect(ids.indexOf("syd-a")).toBeGreaterThanOrEqual(0);
    // The latest minute with figures (the summary was made a moment ago, perhaps in the minute before).
    const last = (pts: { rps: number | null }[]) => [...pts].reverse().find((p) => p.rps !== null)?.rps;
    const byId = Object.fromEntries(h.instances.map((i: { id: string; points: { rps: number | null }[] }) => [i.id, i]));
    expect(byId["syd-a"].points).toHaveLength(60);
    expect(last(byId["syd-a"].points)).toBe(5);
    expect(byId["syd-a"].replica_lag_seconds).toBe(2.35);
    // The cluster's latest minute is the sum of what the instances reported (the primary itself has no sampler here).
    expect(last(h.cluster)).toBe(12);
  });

  test("an oversized history is refused with 422", async () => {
    const r = await put("syd-c", { ...body, history: "x".repeat(SUMMARY_MAX_CHARS + 1) });
    expect(r.status).toBe(422);
  });
});

test("a replica whose primary refuses the new fields (previous version) sends the older beat", async () => {
  const seen: Record<string, unknown>[] = [];
  const old = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const b = (await req.json()) as Record<string, unknown>;
      seen.push(b);
      return "replica_lag_seconds" in b || "history" in b ? new Response("unknown property", { status: 422 }) : new Response(null, { status: 204 });
    },
  });
  try {
    const role: Role = { isPrimary: () => false, primaryName: () => null, state: () => ({ kind: "replica" }) as ReturnType<Role["state"]>, ready: async () => {}, close: () => {} };
    const writer = registryWriter({
      primary: { url: `http://127.0.0.1:${old.port}`, internalPort: 0, token: TOKEN, breaker: { volumeThreshold: 3, resetTimeoutMs: 1_000 } as never },
      logger: createLogger("silent"),
      database: null as never,
      role,
    });
    const via = await writer.upsert({
      id: "r9", region: "syd", role: "replica", host: "h", port: 1, version: "0", startedAt: new Date().toISOString(),
      inFlight: 0, cpuPercent: 0, memoryPercent: 0, replicaLagSeconds: 1, history: summary(1),
    });
    expect(via).toBe("primary");
    expect(seen).toHaveLength(2);
    expect(seen[1]).not.toHaveProperty("history");
    expect(seen[1]).toMatchObject({ region: "syd", in_flight: 0 });
  } finally {
    old.stop(true);
  }
});
