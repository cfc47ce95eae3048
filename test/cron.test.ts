// Cluster cron's scheduler: per-tick claims so each tick runs once, runs aborted when the lease is lost,
// database schedules only where writes are possible, run records; and three real processes with a per-second
// schedule whose lease holder is stopped midway. Real Redis on its own prefix; the leases: cron-leases.test.ts.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Subprocess } from "bun";
import type { Redis } from "../src/platform/redis.ts";
import { MemoryLeaseStore, RedisLeaseStore, type LeaseStore } from "../src/platform/cron/lease.ts";
import { MemoryRunStore, RedisRunStore, type RunStore } from "../src/platform/cron/runs.ts";
import { CronScheduler, type ScheduleDefinition } from "../src/platform/cron/scheduler.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { REDIS_URL, TEST_TIMEOUT_MS } from "./helpers.ts";
import { countingStore, cronFile, logger } from "./fixtures/cron.ts";
import { waitUntil } from "./support/wait.ts";
import { spawnBun } from "./support/process.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { newPrefix, closeAfter, slowAcquireStore, renewalsPassed } = cronFile("cron", (r) => (redis = r));

function scheduler(opts: {
  schedules: ScheduleDefinition<null>[];
  leases: LeaseStore;
  runs: RunStore;
  instanceId: string;
  canWrite?: () => boolean;
  leaseMs?: number;
}) {
  const s = new CronScheduler<null>({
    canWrite: () => true,
    leaseMs: 2_000,
    shutdownGraceMs: 1_000,
    logger,
    ...opts,
  });
  closeAfter(() => s.close());
  return s;
}

describe("CronScheduler", () => {
  test("two schedulers on one Redis: each tick runs once, recorded with instance, start, end and status", async () => {
    const p = newPrefix();
    const ticks: string[] = [];
    const def: ScheduleDefinition<null> = {
      name: "sec",
      pattern: "* * * * * *",
      writesDb: false,
      async run(_d, ctx) {
        ticks.push(`${ctx.scheduledAt.getTime()}|${ctx.instanceId}`);
      },
    };
    const leases = new RedisLeaseStore(redis, p);
    const runs = new RedisRunStore(redis, p);
    const a = scheduler({ schedules: [def], leases, runs, instanceId: "a" });
    const b = scheduler({ schedules: [def], leases: new RedisLeaseStore(redis, p), runs, instanceId: "b" });
    a.start(null);
    b.start(null);
    await waitUntil(() => ticks.length >= 3, 10_000, "three ticks");
    await a.close();
    await b.close();
    const times = ticks.map((t) => t.split("|")[0]);
    expect(times.length).toBeGreaterThanOrEqual(2);
    expect(new Set(times).size).toBe(times.length);
    const [status] = await a.list();
    expect(status).toMatchObject({ name: "sec", schedule: "* * * * * *", last_status: "completed", writes_db: false });
    expect(["a", "b"]).toContain(status!.last_instance ?? "");
    expect(Date.parse(status!.next_run_at!) % 1_000).toBe(0);
    const history = await a.history("sec", 10);
    expect(history.length).toBe(Math.min(10, ticks.length));
    expect(history[0]).toMatchObject({ name: "sec", status: "completed" });
    expect(Date.parse(history[0]!.finished_at!)).toBeGreaterThanOrEqual(Date.parse(history[0]!.started_at));
  }, 15_000);

  test("a schedule that writes the database runs only where writes are possible", async () => {
    const p = newPrefix();
    const ran: string[] = [];
    const def: ScheduleDefinition<null> = {
      name: "db",
      pattern: "* * * * * *",
      writesDb: true,
      async run(_d, ctx) {
        ran.push(ctx.instanceId);
      },
    };
    // A schedule beside it that writes nothing: its runs count the replica's ticks.
    let replicaTicks = 0;
    const counter: ScheduleDefinition<null> = { name: "counter", pattern: "* * * * * *", writesDb: false, run: async () => void replicaTicks++ };
    const runs = new RedisRunStore(redis, p);
    const replica = scheduler({ schedules: [def, counter], leases: new RedisLeaseStore(redis, p), runs, instanceId: "replica", canWrite: () => false });
    replica.start(null);
    await waitUntil(() => replicaTicks >= 2, 5_000, "two ticks on the replica");
    expect(ran).toEqual([]);
    const primary = scheduler({ schedules: [def], leases: new RedisLeaseStore(redis, p), runs, instanceId: "primary" });
    primary.start(null);
    await waitUntil(() => ran.length >= 1, 5_000, "the primary to run it");
    await primary.close();
    await replica.close();
    expect(new Set(ran)).toEqual(new Set(["primary"]));
  }, 15_000);

  test("a run is aborted when its instance loses the lease, and recorded as aborted", async () => {
    const p = newPrefix();
    let signal: AbortSignal | undefined;
    const def: ScheduleDefinition<null> = {
      name: "long",
      pattern: "* * * * * *",
      writesDb: false,
      async run(_d, ctx) {
        if (signal) return;
        signal = ctx.signal;
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
      },
    };
    const runs = new RedisRunStore(redis, p);
    const s = scheduler({ schedules: [def], leases: new RedisLeaseStore(redis, p), runs, instanceId: "x", leaseMs: 1_200 });
    s.start(null);
    await waitUntil(() => signal !== undefined, 5_000, "the run to start");
    await redis.set(`${p}lease:cron:long`, "another-instance", { expiration: { type: "PX", value: 60_000 } });
    await waitUntil(() => signal!.aborted, 3_000, "the run to be aborted");
    const last = await waitUntil(async () => {
      const [st] = await s.list();
      return st?.last_status === "aborted" ? st : null;
    }, 3_000, "the aborted run to be recorded");
    expect(last.last_instance).toBe("x");
    expect(last.last_error).toContain("lease lost");
  }, 15_000);

  test("close() while a tick is taking the lease: the lease is released, not renewed, and the tick is not claimed", async () => {
    const p = newPrefix();
    const { slow, inAcquire, acquired } = slowAcquireStore(p);
    const counted = countingStore(slow);
    let ran = 0;
    const s = scheduler({
      schedules: [{ name: "s", pattern: "* * * * * *", writesDb: false, run: async () => void ran++ }],
      leases: counted.store,
      runs: new MemoryRunStore(),
      instanceId: "i1",
      leaseMs: 1_500,
    });
    s.start(null);
    await inAcquire; // a tick is inside lease.ensure()
    await s.close();
    // Past the slow acquire, and past the renewals a lease of the same life taken now gets (every 500 ms):
    // nothing holds the lease, nothing renewed it, nothing claimed the tick.
    await acquired;
    await renewalsPassed(newPrefix(), 1_500);
    expect(counted.renewals("cron:s")).toBe(0);
    expect(await redis.get(`${p}lease:cron:s`)).toBeNull();
    const claims: string[] = [];
    for await (const keys of redis.scanIterator({ MATCH: `${p}claim:*`, COUNT: 100 })) claims.push(...keys.map(String));
    expect(claims).toEqual([]);
    expect(ran).toBe(0);
  }, 10_000);

  test("a corrupt run record is read as no record, with a warning; the other schedules keep theirs", async () => {
    const p = newPrefix();
    const lines: string[] = [];
    const runs = new RedisRunStore(redis, p, createLogger("warn", {}, (l) => lines.push(l)));
    const good = { name: "good", scheduled_at: new Date(0).toISOString(), started_at: new Date(1).toISOString(), finished_at: null, instance: "i", status: "running", error: null } as const;
    await runs.record(good);
    await redis.set(`${p}last:bad`, "{not json");
    await redis.set(`${p}last:wrong`, JSON.stringify({ name: "wrong", status: 7 }));
    expect(await runs.last(["good", "bad", "wrong", "none"])).toEqual({ good, bad: null, wrong: null, none: null });
    expect(lines.filter((l) => l.includes("unreadable cron run record")).length).toBe(2);
    await redis.lPush(`${p}runs:good`, ["{\"trunc", JSON.stringify({ ...good, status: "completed" })]);
    expect(await runs.history("good", 10)).toEqual([{ ...good, status: "completed" }]);

    const s = scheduler({
      schedules: ["good", "bad"].map((name) => ({ name, pattern: "0 0 1 1 *", writesDb: false, run: async () => {} })),
      leases: new RedisLeaseStore(redis, p),
      runs,
      instanceId: "i",
    });
    const list = await s.list();
    expect(list.map((c) => [c.name, c.last_status])).toEqual([
      ["good", "running"],
      ["bad", null],
    ]);
  });

  test("without Redis: in-process lease and run records", async () => {
    let n = 0;
    const s = scheduler({
      schedules: [{ name: "local", pattern: "* * * * * *", writesDb: true, run: async () => void n++ }],
      leases: new MemoryLeaseStore(),
      runs: new MemoryRunStore(),
      instanceId: "solo",
    });
    s.start(null);
    await waitUntil(() => n >= 2, 5_000, "two ticks");
    const [st] = await s.list();
    expect(st).toMatchObject({ name: "local", last_instance: "solo", last_status: "completed" });
  }, 10_000);

  test("two schedules with the same name are refused", () => {
    const def: ScheduleDefinition<null> = { name: "dup", pattern: "* * * * *", writesDb: false, run: async () => {} };
    expect(() => scheduler({ schedules: [def, def], leases: new MemoryLeaseStore(), runs: new MemoryRunStore(), instanceId: "z" })).toThrow(
      'two cron schedules are named "dup"',
    );
  });

  test("the service's schedules include the session cleanup every 15 minutes", async () => {
    const { SCHEDULES } = await import("../src/modules/jobs/schedules.ts");
    expect(SCHEDULES.find((s) => s.name === "cleanup_expired_sessions")).toMatchObject({ pattern: "*/15 * * * *", writesDb: true });
  });
});

describe("three processes, a schedule every second for ten seconds, the lease holder stopped midway", () => {
  const procs: Subprocess[] = [];
  afterAll(async () => {
    for (const p of procs) {
      p.kill("SIGCONT");
      p.kill("SIGKILL");
    }
    await Promise.all(procs.map((p) => p.exited));
  });

  test("no tick runs twice and the gap is at most the lease time (plus the tick it lands on)", async () => {
    const LEASE_MS = 2_000;
    const p = newPrefix();
    const spawn = async (id: string) => {
      const s = spawnBun(["test/fixtures/cron-instance.ts"], { REDIS_URL, CRON_PREFIX: p, INSTANCE_ID: id, LEASE_MS: String(LEASE_MS) });
      procs.push(s.proc);
      await s.waitForOutput("ready");
      return s.proc;
    };
    const ids = ["cron-1", "cron-2", "cron-3"];
    const instances = await Promise.all(ids.map(spawn));
    const start = Date.now();
    const ticks = async () =>
      ((await redis.lRange(`${p}ticks`, 0, -1)) as string[]).map((t) => {
        const [at, inst] = t.split("|");
        return { at: Number(at), inst: inst! };
      });

    // Running: a few ticks recorded and a holder of the lease.
    await waitUntil(async () => (await ticks()).length >= 2 && (await redis.get(`${p}lease:cron:every_second`)) !== null, 10_000, "ticks and a lease holder");
    // Stop it mid-second, between ticks: a stop that lands in the millisecond between a holder's renewal and
    // its claim at a tick edge would measure that race, not the lease.
    await Bun.sleep(1_500 - (Date.now() % 1_000));
    const holderToken = String(await redis.get(`${p}lease:cron:every_second`));
    const holder = ids.findIndex((id) => holderToken.startsWith(`${id}:`));
    expect(holder).toBeGreaterThanOrEqual(0);
    // Stopped, not killed: it resumes later believing it still holds the lease, the harder case.
    instances[holder]!.kill("SIGSTOP");
    const stoppedAt = Date.now();
    await Bun.sleep(4_000);
    instances[holder]!.kill("SIGCONT");
    await Bun.sleep(Math.max(0, 10_500 - (Date.now() - start)));
    for (const proc of instances) proc.kill("SIGTERM");
    await Promise.all(instances.map((proc) => proc.exited));

    const all = (await ticks()).sort((x, y) => x.at - y.at);
    const times = all.map((t) => t.at);
    // No tick ran twice.
    expect(new Set(times).size).toBe(times.length);
    // Every tick is a whole second, and ticks kept coming for the ten seconds.
    expect(times.every((t) => t % 1_000 === 0)).toBe(true);
    expect(times.length).toBeGreaterThanOrEqual(6);
    // The largest gap between consecutive ticks run: at most the lease time plus one period.
    let maxGap = 0;
    for (let i = 1; i < times.length; i++) maxGap = Math.max(maxGap, times[i]! - times[i - 1]!);
    const byInstance = Object.fromEntries(ids.map((id) => [id, all.filter((t) => t.inst === id).length]));
    console.log(`cron test: ${times.length} ticks, max gap ${maxGap} ms, per instance ${JSON.stringify(byInstance)}`);
    expect(maxGap).toBeLessThanOrEqual(LEASE_MS + 1_000);
    // Someone else took over while the holder was stopped.
    const during = all.filter((t) => t.at > stoppedAt + LEASE_MS + 1_000 && t.at < stoppedAt + 4_000);
    expect(during.length).toBeGreaterThan(0);
    expect(during.every((t) => t.inst !== ids[holder])).toBe(true);
  }, 40_000);
});
