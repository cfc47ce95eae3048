// The heartbeat registry, GET /cluster/stats, the /internal routes a replica writes through, and the replica
// write guard, driven in process through app.handle (the two-process versions live in replica.test.ts).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listInstances, upsertInstance, type InstanceBeat } from "../src/platform/cluster/instances.ts";
import { CpuSampler, memoryPercent } from "../src/platform/cluster/process-stats.ts";
import { pruneInstances, startHeartbeat } from "../src/platform/cluster/registry.ts";
import { isHealthy, summarize } from "../src/modules/cluster/service.ts";
import { SCHEDULES } from "../src/modules/jobs/schedules.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { makeApp, tempDir, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { heartbeatOptions } from "../src/main/options.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { ADMIN_EMAIL: "root@example.com", ADMIN_PASSWORD: "root-password-1" };
const TOKEN = "internal-token-0123456789";

const beat = (id: string, over: Partial<InstanceBeat> = {}): InstanceBeat => ({
  id,
  region: "local",
  role: "primary",
  host: "h",
  port: 3000,
  version: "0.1.0",
  startedAt: new Date().toISOString(),
  inFlight: 0,
  cpuPercent: 0,
  memoryPercent: 1,
  ...over,
});

function replicaDir(primary: string): string {
  const dir = tempDir("litefs-");
  writeFileSync(join(dir, ".primary"), `${primary}\n`);
  return dir;
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("debug", {}, (line) => lines.push(JSON.parse(line)));
  return { logger, lines };
}

describe("GET /cluster/stats", () => {
  let t: TestApp;
  let admin: string;
  beforeAll(async () => {
    t = await makeApp({ ...ADMIN, HEARTBEAT_INTERVAL: "10" });
    admin = await t.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
  });
  afterAll(() => t.close());

  test("anonymous 401, a plain user 403", async () => {
    expect((await t.request("GET", "/cluster/stats")).status).toBe(401);
    const u = await t.user();
    const r = await t.request("GET", "/cluster/stats", { token: u.token });
    expect(r.status).toBe(403);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
  });

  test("counts, averages over healthy instances, and the least loaded healthy instance", async () => {
    const db = t.deps.database.db;
    const now = new Date();
    // score = 0.7 x in-flight + 0.3 x CPU
    await upsertInstance(db, beat("a", { inFlight: 10, cpuPercent: 5, memoryPercent: 10 }), now); // 8.5
    await upsertInstance(db, beat("b", { inFlight: 2, cpuPercent: 50, memoryPercent: 20, role: "replica", region: "lhr" }), now); // 16.4
    await upsertInstance(db, beat("c", { inFlight: 0, cpuPercent: 20, memoryPercent: 30 }), now); // 6
    // Idle but silent for four intervals: unhealthy, so never the least loaded despite its score of 0.
    await upsertInstance(db, beat("d", { inFlight: 0, cpuPercent: 0, memoryPercent: 90 }), new Date(now.getTime() - 40_000));

    const { status, body } = await t.json("GET", "/cluster/stats", { token: admin });
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(
      ["average_cpu_usage", "average_memory_usage", "healthy_instances", "instances", "least_loaded_instance", "total_connections", "total_instances"].sort(),
    );
    expect(body.total_instances).toBe(4);
    expect(body.healthy_instances).toBe(3);
    expect(body.total_connections).toBe(12);
    expect(body.average_cpu_usage).toBe(25);
    expect(body.average_memory_usage).toBe(20);
    expect(body.least_loaded_instance).toBe("c");
    const byId = Object.fromEntries(body.instances.map((i: any) => [i.id, i]));
    expect(byId.d.healthy).toBe(false);
    expect(byId.d.seconds_since_heartbeat).toBeGreaterThanOrEqual(40);
    expect(byId.b).toMatchObject({ role: "replica", region: "lhr", in_flight: 2, cpu_usage: 50, memory_usage: 20, load_score: 16.4, healthy: true, port: 3000 });
    expect(byId.a.load_score).toBe(8.5);
  });

  test("no healthy instance: least_loaded_instance is null and averages are 0", () => {
    const old = new Date(Date.now() - 3_600_000).toISOString();
    const rows = [{ ...beat("x"), lastHeartbeat: old }];
    const s = summarize(rows, 10);
    expect(s).toMatchObject({ total_instances: 1, healthy_instances: 0, least_loaded_instance: null, average_cpu_usage: 0, total_connections: 0 });
  });
});

test("unhealthy after three missed beats, not before", () => {
  const now = Date.now();
  const ago = (s: number) => new Date(now - s * 1000).toISOString();
  expect(isHealthy(ago(5), 10, now)).toBe(true);
  expect(isHealthy(ago(29), 10, now)).toBe(true);
  expect(isHealthy(ago(32), 10, now)).toBe(false);
  expect(isHealthy(ago(3.5), 1, now)).toBe(true);
  expect(isHealthy(ago(4.5), 1, now)).toBe(false);
});

test("pruneInstances deletes instances not seen for an hour, and only those", async () => {
  const t = await makeApp();
  try {
    const db = t.deps.database.db;
    await upsertInstance(db, beat("fresh"));
    await upsertInstance(db, beat("59min"), new Date(Date.now() - 59 * 60_000));
    await upsertInstance(db, beat("61min"), new Date(Date.now() - 61 * 60_000));
    expect(await pruneInstances(t.deps)).toBe(1);
    expect((await listInstances(db)).map((r) => r.id).sort()).toEqual(["59min", "fresh"]);
  } finally {
    await t.close();
  }
});

test("the hourly prune_instances cron schedule prunes through pruneInstances", async () => {
  const schedule = SCHEDULES.find((s) => s.name === "prune_instances");
  expect(schedule).toMatchObject({ pattern: "0 * * * *", writesDb: true });
  const t = await makeApp();
  try {
    await upsertInstance(t.deps.database.db, beat("fresh"));
    await upsertInstance(t.deps.database.db, beat("gone"), new Date(Date.now() - 2 * 3_600_000));
    await schedule!.run(t.deps, { scheduledAt: new Date(), signal: new AbortController().signal, instanceId: "x", logger: t.deps.logger });
    expect((await listInstances(t.deps.database.db)).map((r) => r.id)).toEqual(["fresh"]);
  } finally {
    await t.close();
  }
});

describe("heartbeat on the primary", () => {
  test("registers at start, refreshes its figures on each beat, deregisters on stop", async () => {
    const t = await makeApp({ HEARTBEAT_INTERVAL: "60", INSTANCE_ID: "self-1", FLY_REGION: "cdg" });
    try {
      let inFlight = 3;
      const hb = startHeartbeat(t.deps, heartbeatOptions(t.config, { port: 4321, inFlight: () => inFlight }));
      await hb.registered;
      let rows = await listInstances(t.deps.database.db);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: "self-1", region: "cdg", role: "primary", port: 4321, inFlight: 3 });
      expect(rows[0]!.memoryPercent).toBeGreaterThan(0);
      const first = rows[0]!.lastHeartbeat;
      const startedAt = rows[0]!.startedAt;

      inFlight = 7;
      await Bun.sleep(5);
      expect(await hb.beat()).toBe(true);
      rows = await listInstances(t.deps.database.db);
      expect(rows[0]!.inFlight).toBe(7);
      expect(rows[0]!.lastHeartbeat > first).toBe(true);
      expect(rows[0]!.startedAt).toBe(startedAt);

      await hb.stop();
      expect(await listInstances(t.deps.database.db)).toHaveLength(0);
    } finally {
      await t.close();
    }
  });

  test("beats on its own every HEARTBEAT_INTERVAL", async () => {
    const t = await makeApp({ HEARTBEAT_INTERVAL: "1", INSTANCE_ID: "ticker" });
    try {
      const hb = startHeartbeat(t.deps, heartbeatOptions(t.config, { port: 1, inFlight: () => 0 }));
      await hb.registered;
      const first = (await listInstances(t.deps.database.db))[0]!.lastHeartbeat;
      const later = await waitUntil(async () => {
        const now = (await listInstances(t.deps.database.db))[0]!.lastHeartbeat;
        return now !== first && now;
      }, { timeoutMs: 10_000, intervalMs: 100 }, "a later beat");
      expect(later > first).toBe(true);
      await hb.stop();
    } finally {
      await t.close();
    }
  }, 15_000);
});

describe("heartbeat on a replica whose primary is unreachable", () => {
  test("logs the failure, retries, and never throws", async () => {
    const dead = Bun.serve({ port: 0, fetch: () => new Response() });
    const port = dead.port;
    await dead.stop(true);
    const t = await makeApp({ LITEFS_DIR: replicaDir("gone"), PRIMARY_URL: `http://127.0.0.1:${port}`, INTERNAL_TOKEN: TOKEN, HEARTBEAT_INTERVAL: "1" });
    try {
      const { logger, lines } = capture();
      const hb = startHeartbeat({ ...t.deps, logger }, heartbeatOptions(t.config, { port: 1, inFlight: () => 0 }));
      await hb.registered;
      const failures = () => lines.filter((l) => l.msg === "heartbeat failed; will retry");
      await waitUntil(() => failures().length >= 3, 10_000, "three failed beats");
      expect(failures().length).toBeGreaterThanOrEqual(3);
      expect(failures().map((l) => l.attempt).slice(0, 3)).toEqual([1, 2, 3]);
      expect(JSON.stringify(lines)).not.toContain(TOKEN);
      await hb.stop();
      expect(lines.some((l) => l.msg === "deregistration failed; the row will turn unhealthy and be pruned")).toBe(true);
    } finally {
      await t.close();
    }
  }, 15_000);

  test("without INTERNAL_TOKEN it says so instead of calling", async () => {
    const t = await makeApp({ LITEFS_DIR: replicaDir("p"), PRIMARY_URL: "http://127.0.0.1:9" });
    try {
      const { logger, lines } = capture();
      const hb = startHeartbeat({ ...t.deps, logger }, heartbeatOptions(t.config, { port: 1, inFlight: () => 0 }));
      await hb.registered;
      await hb.stop();
      expect(String(lines.find((l) => l.msg === "heartbeat failed; will retry")?.error)).toContain("INTERNAL_TOKEN");
    } finally {
      await t.close();
    }
  });
});

describe("/internal routes", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeApp({ INTERNAL_TOKEN: TOKEN, INSTANCE_ID: "the-primary" });
  });
  afterAll(() => t.close());
  const body = {
    region: "lhr", role: "replica", host: "r1", port: 8081, version: "0.1.0",
    started_at: "2024-01-01T00:00:00.000Z", in_flight: 4, cpu_percent: 12.5, memory_percent: 3.25,
  };

  test("no token or a wrong token: 401, nothing written", async () => {
    expect((await t.request("PUT", "/internal/instances/r1", { body })).status).toBe(401);
    const wrong = await t.request("PUT", "/internal/instances/r1", { body, headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("content-type")).toBe("application/problem+json");
    const short = await t.request("PUT", "/internal/instances/r1", { body, headers: { authorization: "Bearer x" } });
    expect(short.status).toBe(401);
    expect(await listInstances(t.deps.database.db)).toHaveLength(0);
  });

  test("with the token: the primary writes the beat, stamped with its own clock", async () => {
    const before = new Date().toISOString();
    const r = await t.request("PUT", "/internal/instances/r1", { body, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(204);
    const rows = await listInstances(t.deps.database.db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: "r1", region: "lhr", role: "replica", host: "r1", port: 8081, inFlight: 4, cpuPercent: 12.5, memoryPercent: 3.25 });
    expect(rows[0]!.lastHeartbeat >= before).toBe(true);
  });

  test("a malformed beat is refused with 422", async () => {
    const r = await t.json("PUT", "/internal/instances/r2", { body: { ...body, cpu_percent: "high" }, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(422);
    expect(r.body.errors.some((e: any) => e.field === "cpu_percent")).toBe(true);
  });

  test("prune and delete", async () => {
    await upsertInstance(t.deps.database.db, beat("ancient"), new Date(Date.now() - 2 * 3_600_000));
    const p = await t.json("POST", "/internal/instances/prune", { body: { max_age_seconds: 3600 }, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(p).toMatchObject({ status: 200, body: { removed: 1 } });
    const d = await t.request("DELETE", "/internal/instances/r1", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(d.status).toBe(204);
    expect(await listInstances(t.deps.database.db)).toHaveLength(0);
  });

  test("off when INTERNAL_TOKEN is unset", async () => {
    const off = await makeApp();
    try {
      const r = await off.request("PUT", "/internal/instances/r1", { body, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.status).toBe(404);
      expect(await listInstances(off.deps.database.db)).toHaveLength(0);
    } finally {
      await off.close();
    }
  });

  test("a replica refuses them with 409 and fly-replay to the primary", async () => {
    const rep = await makeApp({ INTERNAL_TOKEN: TOKEN, LITEFS_DIR: replicaDir("machine-p") });
    try {
      const r = await rep.request("PUT", "/internal/instances/r1", { body, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.status).toBe(409);
      expect(r.headers.get("fly-replay")).toBe("instance=machine-p");
      // ...and still checks the token first.
      expect((await rep.request("PUT", "/internal/instances/r1", { body })).status).toBe(401);
    } finally {
      await rep.close();
    }
  });
});

describe("replica write guard", () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    // A file the primary migrated, then mounted here as a replica's (LiteFS keeps both in one directory).
    dir = tempDir("litefs-");
    await (await makeApp({}, dir)).close();
    writeFileSync(join(dir, ".primary"), "3d8d99e4b3d268\n");
    t = await makeApp({ LITEFS_DIR: dir }, dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(() => t.close());

  test.each([
    ["POST", "/api/v1/users"],
    ["PATCH", "/api/v1/users/1"],
    ["DELETE", "/api/v1/users/1"],
    ["PUT", "/api/v1/anything"],
    ["POST", "/no/such/route"],
  ])("%s %s answers 409 problem+json with fly-replay: instance=<primary>", async (method, path) => {
    const r = await t.request(method, path, { body: { email: "a@example.com", password: "password-1", full_name: "A" }, headers: { "x-request-id": "rid-1" } });
    expect(r.status).toBe(409);
    expect(r.headers.get("fly-replay")).toBe("instance=3d8d99e4b3d268");
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect(r.headers.get("x-request-id")).toBe("rid-1");
    const body = (await r.json()) as any;
    expect(body).toMatchObject({ status: 409, title: "Conflict" });
    expect(body.detail).toContain("3d8d99e4b3d268");
  });

  test("reads and health checks pass through", async () => {
    expect((await t.request("GET", "/health/ready")).status).toBe(200);
    expect((await t.request("GET", "/health/live")).status).toBe(200);
    expect((await t.request("GET", "/api/v1/users/me")).status).toBe(401);
    expect((await t.request("OPTIONS", "/api/v1/users")).headers.get("fly-replay")).toBeNull();
  });

  test("the role is re-read: once .primary is gone (this node was promoted) writes go through", async () => {
    rmSync(join(dir, ".primary"));
    // The role file is read at most once a second.
    await waitUntil(() => t.deps.role.isPrimary(), 5_000, "the role to be re-read");
    const r = await t.request("POST", "/api/v1/users", { body: { email: "a@example.com", password: "password-1", full_name: "A" } });
    expect(r.status).toBe(201);
    expect(r.headers.get("fly-replay")).toBeNull();
  });

  test("the primary never answers fly-replay", async () => {
    const p = await makeApp();
    try {
      const r = await p.request("POST", "/api/v1/users", { body: { email: "p@example.com", password: "password-1", full_name: "P" } });
      expect(r.status).toBe(201);
      expect(r.headers.get("fly-replay")).toBeNull();
    } finally {
      await p.close();
    }
  });
});

describe("process figures", () => {
  test("CPU % comes from cpuUsage deltas: busy work shows, within 0..100", () => {
    const s = new CpuSampler();
    const until = performance.now() + 60;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const pct = s.sample();
    expect(x).toBeGreaterThan(0);
    expect(pct).toBeGreaterThan(0);
    expect(pct).toBeLessThanOrEqual(100);
  });

  test("memory % is resident size against the machine's memory", () => {
    const m = memoryPercent();
    expect(m).toBeGreaterThan(0);
    expect(m).toBeLessThan(100);
  });
});
