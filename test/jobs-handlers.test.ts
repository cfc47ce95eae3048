// The handlers: idempotent under redelivery (the same job id twice writes one row), the session cleanup, the
// preference merge, and welcome mail through an HTTP mail API (a local Bun.serve) instead of the table.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { eq } from "drizzle-orm";
import type { Server } from "bun";
import type { Redis } from "../src/platform/redis.ts";
import { appFeatures } from "../src/main/features.ts";
import { analyticsEvents, auditLog, emailOutbox, jobResults, outbox, sessions } from "../src/platform/db/schema/index.ts";
import { DbMailer } from "../src/platform/mail/db-mailer.ts";
import { PermanentJobError, type JobContext, type JobDefinition } from "../src/platform/jobs/port.ts";
import { makeApp, REDIS_URL, testPrefix, type TestApp, dropPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ctx = (jobId: string, type = "t"): JobContext => ({ jobId, type, attempt: 1, signal: new AbortController().signal });

describe("handlers (called directly, as a redelivery would)", () => {
  let a: TestApp;
  let defs: Map<string, JobDefinition<any>>;
  beforeAll(async () => {
    a = await makeApp({ REDIS_URL: undefined });
    // Every feature's job types, as the root registers them (the mailer is the database one: no MAIL_API_URL).
    defs = new Map(appFeatures(a.deps).flatMap((f) => f.jobs ?? []).map((d) => [d.type, d]));
  });
  afterAll(() => a.close());

  test("every job type is declared, with where it may run", () => {
    expect(Object.fromEntries([...defs].map(([k, d]) => [k, d.writesDb]))).toEqual({
      send_welcome_email: true,
      process_user_analytics: true,
      log_user_audit: true,
      cleanup_expired_sessions: true,
      update_user_preferences: true,
    });
  });

  test("welcome email, analytics and audit write one row per job however often they run", async () => {
    const u = await a.user();
    const payload = { user_id: u.id, email: u.email, full_name: "Twice" };
    for (const type of ["send_welcome_email", "process_user_analytics", "log_user_audit"]) {
      for (let i = 0; i < 3; i++) await defs.get(type)!.handler(payload, ctx(`job-${type}-1`, type));
      await defs.get(type)!.handler(payload, ctx(`job-${type}-2`, type));
    }
    const { db } = a.deps.database;
    const byJob = async (table: typeof emailOutbox | typeof analyticsEvents | typeof auditLog, prefix: string) =>
      (await db.select().from(table)).filter((r) => r.jobId.startsWith(prefix)).map((r) => r.jobId).sort();
    expect(await byJob(emailOutbox, "job-send_welcome_email")).toEqual(["job-send_welcome_email-1", "job-send_welcome_email-2"]);
    expect(await byJob(analyticsEvents, "job-process_user_analytics")).toEqual(["job-process_user_analytics-1", "job-process_user_analytics-2"]);
    expect(await byJob(auditLog, "job-log_user_audit")).toEqual(["job-log_user_audit-1", "job-log_user_audit-2"]);
    const [mail] = await db.select().from(emailOutbox).where(eq(emailOutbox.jobId, "job-send_welcome_email-1"));
    expect(mail).toMatchObject({ userId: u.id, toEmail: u.email, subject: "Welcome to neodyme-edge" });
    expect(mail!.body).toContain("Twice");
    const [audit] = await db.select().from(auditLog).where(eq(auditLog.jobId, "job-log_user_audit-1"));
    expect(audit).toMatchObject({ userId: u.id, action: "user_registered" });
  });

  test("a payload without a user id fails permanently", async () => {
    await expect(defs.get("log_user_audit")!.handler({ email: "x@example.com" }, ctx("bad-1"))).rejects.toBeInstanceOf(PermanentJobError);
  });

  test("cleanup_expired_sessions deletes expired sessions only, and again is a no-op", async () => {
    const u = await a.user();
    const { db } = a.deps.database;
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    await db.insert(sessions).values([
      { id: "expired-1", userId: u.id, expiresAt: past },
      { id: "expired-2", userId: u.id, expiresAt: past },
      { id: "alive-1", userId: u.id, expiresAt: future },
    ]);
    await defs.get("cleanup_expired_sessions")!.handler({}, ctx("c-1"));
    await defs.get("cleanup_expired_sessions")!.handler({}, ctx("c-1"));
    const left = (await db.select().from(sessions).where(eq(sessions.userId, u.id))).map((s) => s.id);
    expect(left).not.toContain("expired-1");
    expect(left).not.toContain("expired-2");
    expect(left).toContain("alive-1");
    // The login session of a.user() is still valid.
    expect((await a.json("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
  });

  test("update_user_preferences merges (and is the same merge when run twice); an unknown user fails permanently", async () => {
    const u = await a.user();
    const job = defs.get("update_user_preferences")!;
    await job.handler({ user_id: u.id, preference_updates: { a: 1, b: "x" } }, ctx("p-1"));
    await job.handler({ user_id: u.id, preference_updates: { b: null, c: true } }, ctx("p-2"));
    await job.handler({ user_id: u.id, preference_updates: { b: null, c: true } }, ctx("p-2"));
    expect((await a.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body).toEqual({ a: 1, c: true });
    await expect(job.handler({ user_id: 999_999, preference_updates: { a: 1 } }, ctx("p-3"))).rejects.toBeInstanceOf(PermanentJobError);
  });
});

describe("database jobs started together", () => {
  for (const redisUrl of [undefined, REDIS_URL]) {
    test(`complete without stalling each other or the relay (${redisUrl ? "Redis" : "in-process"} queue)`, async () => {
      const p = testPrefix("together");
      const a = await makeApp({ REDIS_URL: redisUrl, REDIS_PREFIX: p, CRON_ENABLED: "false", JOB_CONCURRENCY: "8" });
      try {
        const users = [await a.user(), await a.user(), await a.user(), await a.user()];
        // Queued before the worker starts, so the worker takes them all at once.
        const ids = await a.deps.queue.enqueueMany(
          users.map((u, i) => ({ type: "update_user_preferences", payload: { user_id: u.id, preference_updates: { n: i } } })),
        );
        a.start();
        const jobs = await waitUntil(async () => {
          const all = await a.deps.queue.getJobs(ids);
          return Object.values(all).every((j) => j?.status === "completed" || j?.status === "failed") ? all : null;
        }, 20_000, "the four jobs");
        // A stalled transaction fails with SQLITE_BUSY and is retried: retry_count would show it.
        expect(Object.values(jobs).map((j) => [j!.status, j!.retry_count])).toEqual(Array(4).fill(["completed", 0]));
        // The relay, writing the outbox while those jobs started, was not stalled either (one attempt per row;
        // a row whose job has finished is moved to job_results with its attempts).
        const rows = await waitUntil(async () => {
          const [open, done] = await Promise.all([a.deps.database.db.select().from(outbox), a.deps.database.db.select().from(jobResults)]);
          const all = [...open.map((r) => [r.attempts, r.lastError]), ...done.map((r) => [r.relayAttempts, null])];
          return all.length === 12 && open.every((r) => r.relayedAt !== null) ? all : null;
        }, 10_000, "the registration rows to be relayed");
        expect(rows).toEqual(Array(12).fill([1, null]));
      } finally {
        await a.close();
        if (redisUrl) {
          const r = await redisClient();
          await dropPrefix(r, p);
          await r.close();
        }
      }
    }, 30_000);
  }
});

describe("welcome mail through an HTTP mail API (MAIL_API_URL)", () => {
  interface Received {
    key: string | null;
    auth: string | null;
    body: { from: string; to: string; subject: string; text: string };
  }
  let mailApi: Server<undefined>;
  let received: Received[] = [];
  let failNext = 0;
  let answer = 202;
  let redis: Redis;
  const prefix = testPrefix("mail");
  let a: TestApp;

  beforeAll(async () => {
    mailApi = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = (await req.json()) as Received["body"];
        received.push({ key: req.headers.get("idempotency-key"), auth: req.headers.get("authorization"), body });
        if (failNext > 0) {
          failNext--;
          return new Response("try later", { status: 503 });
        }
        return new Response(null, { status: answer });
      },
    });
    redis = await redisClient();
    a = await makeApp({
      REDIS_URL,
      REDIS_PREFIX: prefix,
      MAIL_API_URL: `http://127.0.0.1:${mailApi.port}/send`,
      MAIL_API_TOKEN: "mail-secret",
      MAIL_FROM: "Team <team@example.com>",
      JOB_BACKOFF_BASE_MS: "30",
      CRON_ENABLED: "false",
    });
    a.start();
  });
  afterAll(async () => {
    await a.close();
    await mailApi.stop(true);
    await dropPrefix(redis, prefix);
    await redis.close();
  });

  test("the welcome job is not a database job then; one POST per registration, keyed by the job id", async () => {
    expect(a.deps.queue.definition("send_welcome_email")?.writesDb).toBe(false);
    received = [];
    const u = await a.user("mail-1@example.com");
    const got = await waitUntil(() => (received.length > 0 ? received : null));
    expect(got[0]!.body).toMatchObject({ from: "Team <team@example.com>", to: "mail-1@example.com", subject: "Welcome to neodyme-edge" });
    expect(got[0]!.auth).toBe("Bearer mail-secret");
    const job = await waitUntil(async () => {
      const j = await a.deps.queue.getJob(got[0]!.key!);
      return j?.status === "completed" ? j : null;
    });
    expect(job.type).toBe("send_welcome_email");
    // A later registration's mail has gone out: a second POST for the first one would have come by then.
    await a.user("mail-1-later@example.com");
    await waitUntil(() => received.some((r) => r.body?.to === "mail-1-later@example.com"), 10_000, "the later registration's mail");
    expect(received.filter((r) => r.body?.to === "mail-1@example.com")).toHaveLength(1);
    // Nothing went to the table.
    expect(await a.deps.database.db.select().from(emailOutbox).where(eq(emailOutbox.userId, u.id))).toHaveLength(0);
  });

  test("a 503 from the API is retried with the same idempotency key; a 400 fails the job at once", async () => {
    received = [];
    failNext = 2;
    await a.user("mail-2@example.com");
    await waitUntil(() => received.length >= 3, 10_000, "three attempts");
    const key = received[0]!.key!;
    expect(received.map((r) => r.key)).toEqual([key, key, key]);
    const job = await waitUntil(async () => {
      const j = await a.deps.queue.getJob(key);
      return j?.status === "completed" ? j : null;
    });
    expect(job.retry_count).toBe(2);

    received = [];
    answer = 400;
    await a.user("mail-3@example.com");
    await waitUntil(() => received.length > 0);
    const failed = await waitUntil(async () => {
      const j = await a.deps.queue.getJob(received[0]!.key!);
      return j?.status === "failed" ? j : null;
    });
    answer = 202;
    expect(failed.retry_count).toBe(0);
    expect(failed.error_message).toContain("mail API answered 400");
    expect(received).toHaveLength(1);
  }, 20_000);
});
