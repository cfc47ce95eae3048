// The Machines API client against the local stand-in (list, start, stop, create; 401, 404, 429, slow, outage
// behind the breaker), and scaler runs on a real SQLite file: dry-run records without acting, "on" acts, the
// cooldown holds across runs (it is read from the decisions table), an outage changes nothing and is recorded.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { upsertInstance } from "../src/platform/cluster/instances.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { OpsMetrics } from "../src/platform/observability/ops-metrics.ts";
import { Breakers, CircuitOpenError } from "../src/platform/resilience/breakers.ts";
import { MachinesApiError, MachinesClient } from "../src/platform/scaler/machines.ts";
import { recentDecisions } from "../src/platform/scaler/records.ts";
import { intervalPattern, machinesClient, runScaler, scalerSchedule, type ScalerDeps } from "../src/platform/scaler/scaler.ts";
import { makeApp, testEnv, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startMachinesStandin, type MachinesStandin } from "./support/machines-standin.ts";
import { scalerOptions } from "../src/main/options.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const silent = createLogger("silent");

describe("MachinesClient against the stand-in", () => {
  let api: MachinesStandin;
  let breakers: Breakers;
  beforeAll(() => {
    api = startMachinesStandin("edge-app", [
      { id: "m1", region: "ams", state: "started" },
      { id: "m2", region: "syd", state: "stopped" },
    ]);
  });
  afterAll(() => api.close());
  afterEach(() => {
    api.fault({ kind: "none" });
    breakers?.close();
  });

  const client = (over: Partial<ConstructorParameters<typeof MachinesClient>[0]> = {}) => {
    breakers = new Breakers(silent);
    return new MachinesClient({
      baseUrl: api.url,
      token: api.token,
      app: api.app,
      timeoutMs: 2_000,
      breaker: breakers.get("fly_machines", { threshold: 3, resetMs: 30_000, windowMs: 10_000 }),
      ...over,
    });
  };

  test("lists, starts, stops and creates from a config", async () => {
    const c = client();
    const list = await c.list();
    expect(list.map((m) => [m.id, m.region, m.state])).toEqual([["m1", "ams", "started"], ["m2", "syd", "stopped"]]);
    await c.start("m2");
    expect(api.machines.get("m2")!.state).toBe("started");
    await c.stop("m2");
    expect(api.machines.get("m2")!.state).toBe("stopped");
    const made = await c.create("syd", list[0]!.config!);
    expect(made).toMatchObject({ region: "syd", state: "started" });
    expect(api.machines.get(made.id)!.config).toEqual(list[0]!.config!);
    expect(api.calls).toContain("POST /v1/apps/edge-app/machines/m2/start");
  });

  test("errors carry the status: a bad token 401, an unknown machine 404, a 429 with its Retry-After", async () => {
    const bad = await client({ token: "nope" }).list().catch((e) => e);
    expect(bad).toBeInstanceOf(MachinesApiError);
    expect(bad.status).toBe(401);
    const missing = await client().start("zzz").catch((e) => e);
    expect(missing.status).toBe(404);
    expect(missing.message).toContain("machine not found");
    api.fault({ kind: "rate-limit", retryAfter: 7 });
    const limited = await client().list().catch((e) => e);
    expect([limited.status, limited.retryAfterSeconds]).toEqual([429, 7]);
  });

  test("a slow answer within the timeout is fine; a hang times out", async () => {
    api.fault({ kind: "slow", ms: 300 });
    expect(await client().list()).toHaveLength(api.machines.size);
    api.fault({ kind: "hang" });
    const start = performance.now();
    const e = await client({ timeoutMs: 500 }).list().catch((x) => x);
    expect(e).toBeInstanceOf(MachinesApiError);
    expect(performance.now() - start).toBeLessThan(5_000);
  });

  test("an outage opens the breaker: later calls fail fast without reaching the API", async () => {
    api.fault({ kind: "status", status: 503 });
    const c = client();
    for (let i = 0; i < 3; i++) await c.list().catch(() => undefined);
    const before = api.calls.length;
    expect(await c.list().catch((e) => e)).toBeInstanceOf(CircuitOpenError);
    expect(api.calls.length).toBe(before);
  });
});

describe("scaler runs", () => {
  let api: MachinesStandin;
  let t: TestApp;
  const beat = (id: string, region: string, role: string, inFlight: number, at = new Date()) =>
    upsertInstance(t.deps.database.db, { id, region, role: role as "primary", host: "h", port: 1, version: "0", startedAt: at.toISOString(), inFlight, cpuPercent: 0, memoryPercent: 0 }, at);

  beforeAll(async () => {
    api = startMachinesStandin("edge-app", [
      { id: "p1", region: "ams", state: "started" },
      { id: "a2", region: "ams", state: "started" },
      { id: "s1", region: "syd", state: "started" },
      { id: "s2", region: "syd", state: "stopped" },
    ]);
    t = await makeApp();
  });
  afterAll(async () => {
    await t.close();
    await api.close();
  });
  afterEach(() => api.fault({ kind: "none" }));

  const deps = (env: Record<string, string>): ScalerDeps => {
    const config = loadConfig(
      testEnv({ FLY_API_URL: api.url, FLY_API_TOKEN: api.token, FLY_APP_NAME: api.app, PRIMARY_REGION: "ams", SCALER_CAPACITY: "10", SCALER_MIN: "1", SCALER_MAX: "3", ...env }),
    );
    return { options: scalerOptions(config), logger: silent, database: t.deps.database, breakers: new Breakers(silent), opsMetrics: new OpsMetrics() };
  };

  test("dry-run decides and records, but calls nothing that changes a machine", async () => {
    await beat("p1", "ams", "primary", 1);
    await beat("a2", "ams", "replica", 1);
    await beat("s1", "syd", "replica", 9);
    const d = deps({ SCALER_MODE: "dry-run" });
    const calls = api.calls.length;
    const rows = await runScaler(d, machinesClient(d)!);
    expect(rows).toEqual([expect.objectContaining({ region: "syd", fromCount: 1, toCount: 2, action: "up", outcome: "dry-run", detail: "start s2" })]);
    expect(api.calls.slice(calls)).toEqual(["GET /v1/apps/edge-app/machines"]);
    expect(api.machines.get("s2")!.state).toBe("stopped");
    expect((await recentDecisions(t.deps.database.db, 1))[0]).toMatchObject({ region: "syd", outcome: "dry-run" });
  });

  test("on: starts the stopped machine; the up cooldown, read from the table, holds the next step", async () => {
    const d = deps({ SCALER_MODE: "on", SCALER_UP_COOLDOWN: "600" });
    await beat("s1", "syd", "replica", 9);
    // The dry-run record above already started syd's cooldown: blocked, recorded as such.
    const held = await runScaler(d, machinesClient(d)!);
    expect(held).toEqual([expect.objectContaining({ region: "syd", action: "hold", outcome: "blocked" })]);
    expect(held[0]!.reason).toMatch(/^cooldown/);
    const go = deps({ SCALER_MODE: "on", SCALER_UP_COOLDOWN: "0" });
    const rows = await runScaler(go, machinesClient(go)!);
    expect(rows).toEqual([expect.objectContaining({ region: "syd", fromCount: 1, toCount: 2, action: "up", outcome: "ok" })]);
    expect(api.machines.get("s2")!.state).toBe("started");
    expect(go.opsMetrics.scalerDecisions.get({ region: "syd", action: "up", outcome: "ok" })).toBe(1);
  });

  test("an outage of the Machines API changes nothing and is recorded per region", async () => {
    api.fault({ kind: "status", status: 503 });
    const before = [...api.machines.values()].map((m) => `${m.id}:${m.state}`);
    const d = deps({ SCALER_MODE: "on", SCALER_UP_COOLDOWN: "0" });
    const rows = await runScaler(d, machinesClient(d)!);
    expect(rows.map((r) => [r.region, r.action, r.outcome])).toEqual([["ams", "hold", "error"], ["syd", "hold", "error"]]);
    expect(rows[0]!.detail).toContain("HTTP 503");
    expect([...api.machines.values()].map((m) => `${m.id}:${m.state}`)).toEqual(before);
  });

  test("stale heartbeats: nothing changes", async () => {
    const old = new Date(Date.now() - 10 * 60_000);
    for (const [id, region, role] of [["p1", "ams", "primary"], ["a2", "ams", "replica"], ["s1", "syd", "replica"], ["s2", "syd", "replica"]] as const) {
      await beat(id, region, role, 0, old);
    }
    const d = deps({ SCALER_MODE: "on", SCALER_MAX: "1", SCALER_DOWN_COOLDOWN: "0" });
    const rows = await runScaler(d, machinesClient(d)!);
    expect(rows).toEqual([expect.objectContaining({ region: "syd", action: "hold", outcome: "blocked" })]);
    expect(rows[0]!.reason).toContain("stale heartbeat data");
    expect(api.machines.get("s2")!.state).toBe("started");
  });

  test("the schedule: off without a token or with SCALER_MODE=off; every SCALER_INTERVAL; writes the database", () => {
    const b = new Breakers(silent);
    expect(scalerSchedule({ options: scalerOptions(loadConfig(testEnv({}))), breakers: b, logger: silent })).toBeNull();
    expect(scalerSchedule({ options: scalerOptions(loadConfig(testEnv({ FLY_API_TOKEN: "x", FLY_APP_NAME: "a", SCALER_MODE: "off" }))), breakers: b, logger: silent })).toBeNull();
    const s = scalerSchedule({ options: scalerOptions(loadConfig(testEnv({ FLY_API_TOKEN: "x", FLY_APP_NAME: "a", SCALER_INTERVAL: "15" }))), breakers: b, logger: silent });
    expect(s).toMatchObject({ name: "scaler", pattern: "*/15 * * * * *", writesDb: true });
    expect([intervalPattern(30), intervalPattern(120), intervalPattern(3600)]).toEqual(["*/30 * * * * *", "0 */2 * * * *", "0 0 * * * *"]);
    expect(() => loadConfig(testEnv({ SCALER_MODE: "on" }))).toThrow("FLY_API_TOKEN");
  });
});
