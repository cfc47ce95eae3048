// The service's cron schedules against a complete app (its own SQLite file and Redis prefix): the session
// cleanup honours the run's abort signal between batches, and GET /admin/cron survives a corrupt run record.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { and, gte, like, lt } from "drizzle-orm";
import type { Redis } from "../src/platform/redis.ts";
import { cleanupExpiredSessions } from "../src/modules/jobs/handlers.ts";
import type { CronContext } from "../src/platform/cron/scheduler.ts";
import { SCHEDULES } from "../src/modules/jobs/schedules.ts";
import { sessions } from "../src/platform/db/schema/index.ts";
import type { Logger } from "../src/platform/observability/logger.ts";
import { makeApp, REDIS_URL, testPrefix, type TestApp, dropPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { redisClient } from "./fixtures/queues.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "root@example.com", password: "admin-password-1" };
const prefix = testPrefix("cron-schedules");
let a: TestApp;
let redis: Redis;
let userId: number;

beforeAll(async () => {
  redis = await redisClient();
  a = await makeApp({ REDIS_URL, REDIS_PREFIX: prefix, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
  userId = (await a.user()).id;
});

afterAll(async () => {
  await a.close();
  await dropPrefix(redis, prefix);
  await redis.close();
});

const EXPIRED = 25;
const LIVE = 5;
const now = () => new Date().toISOString();

/** EXPIRED sessions past their expiry and LIVE ones ahead of it, for one user (the login sessions aside). */
beforeEach(async () => {
  const { db } = a.deps.database;
  await db.delete(sessions).where(lt(sessions.expiresAt, now()));
  await db.delete(sessions).where(like(sessions.id, "test-%"));
  const past = Date.now() - 3_600_000;
  const rows = [
    ...Array.from({ length: EXPIRED }, (_, i) => ({ id: `test-exp-${i}`, userId, expiresAt: new Date(past - i * 1_000).toISOString() })),
    ...Array.from({ length: LIVE }, (_, i) => ({ id: `test-live-${i}`, userId, expiresAt: new Date(Date.now() + 3_600_000).toISOString() })),
  ];
  await db.insert(sessions).values(rows);
});

const expiredLeft = async () => (await a.deps.database.db.select({ id: sessions.id }).from(sessions).where(lt(sessions.expiresAt, now()))).length;
const liveLeft = async () =>
  (await a.deps.database.db.select({ id: sessions.id }).from(sessions).where(and(gte(sessions.expiresAt, now()), like(sessions.id, "test-live-%")))).length;

function ctx(signal: AbortSignal): CronContext {
  return { scheduledAt: new Date(), signal, instanceId: a.config.INSTANCE_ID, logger: a.deps.logger };
}

describe("cleanup_expired_sessions", () => {
  test("the schedule passes its signal on: a run whose lease is already lost deletes nothing", async () => {
    const def = SCHEDULES.find((s) => s.name === "cleanup_expired_sessions")!;
    const ctrl = new AbortController();
    ctrl.abort(new Error("lease lost: another instance holds the lease"));
    await expect(def.run(a.deps, ctx(ctrl.signal))).rejects.toThrow("lease lost");
    expect(await expiredLeft()).toBe(EXPIRED);
  });

  test("aborted between batches, it stops there: the batch done stays done, the rest waits for the next run", async () => {
    const ctrl = new AbortController();
    // Abort as the first batch reports back, as a lost lease would while the delete runs.
    const logger: Logger = Object.assign(Object.create(a.deps.logger) as Logger, {
      debug(msg: string) {
        if (msg === "expired sessions batch removed") ctrl.abort(new Error("lease lost"));
      },
    });
    await expect(cleanupExpiredSessions({ database: a.deps.database, logger }, { signal: ctrl.signal, batchSize: 10 })).rejects.toThrow(
      "lease lost",
    );
    expect(await expiredLeft()).toBe(EXPIRED - 10);
    expect(await liveLeft()).toBe(LIVE);
  });

  test("not aborted, it deletes every expired session in batches and keeps the live ones", async () => {
    expect(await cleanupExpiredSessions(a.deps, { signal: new AbortController().signal, batchSize: 10 })).toBe(EXPIRED);
    expect(await expiredLeft()).toBe(0);
    expect(await liveLeft()).toBe(LIVE);
    // And through the schedule as declared (default batch size).
    await a.deps.database.db.insert(sessions).values({ id: "test-exp-again", userId, expiresAt: new Date(0).toISOString() });
    await SCHEDULES.find((s) => s.name === "cleanup_expired_sessions")!.run(a.deps, ctx(new AbortController().signal));
    expect(await expiredLeft()).toBe(0);
  });
});

describe("GET /admin/cron with a corrupt run record", () => {
  test("answers 200, the corrupt schedule without a last run, the others with theirs", async () => {
    const admin = await a.login(ADMIN.email, ADMIN.password);
    const cronPrefix = `${prefix}cron:`;
    await redis.set(`${cronPrefix}last:cleanup_expired_sessions`, '{"name":"cleanup_expired_sess');
    const good = { name: "prune_instances", scheduled_at: new Date(0).toISOString(), started_at: new Date(1_000).toISOString(), finished_at: new Date(2_000).toISOString(), instance: "other", status: "completed", error: null };
    await redis.set(`${cronPrefix}last:prune_instances`, JSON.stringify(good));
    const r = await a.json("GET", "/api/v1/admin/cron", { token: admin });
    expect(r.status).toBe(200);
    const by = Object.fromEntries((r.body as { name: string }[]).map((c) => [c.name, c]));
    expect(by.cleanup_expired_sessions).toMatchObject({ last_run_at: null, last_status: null, last_instance: null });
    expect(by.prune_instances).toMatchObject({ last_run_at: good.started_at, last_status: "completed", last_instance: "other" });
  });
});
