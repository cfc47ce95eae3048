// The transactional outbox: registration's three jobs are committed with the user and relayed to the queue,
// so they run even when Redis is down at that moment, when the process dies right after the commit, or when
// Redis loses them later. Real Redis (through a TCP proxy where it must go away), real SQLite, real processes.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { eq } from "drizzle-orm";
import type { Redis } from "../src/platform/redis.ts";
import { analyticsEvents, auditLog, emailOutbox, jobResults, outbox } from "../src/platform/db/schema/index.ts";
import type { OutboxRelay } from "../src/platform/jobs/relay.ts";
import { dropPrefix, makeApp, REDIS_URL, tempDir, testEnv, testPrefix, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { spawnBun } from "./support/process.ts";
import { tcpProxy } from "./support/tcp-proxy.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const apps: TestApp[] = [];
const prefixes: string[] = [];
let redis: Redis | undefined;

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  if (redis) {
    for (const p of prefixes) await dropPrefix(redis, p);
    await redis.close();
  }
});

async function app(overrides: Record<string, string | undefined>, dir?: string): Promise<TestApp> {
  const a = await makeApp({ JOB_BACKOFF_BASE_MS: "50", SHUTDOWN_TIMEOUT_MS: "2000", ...overrides }, dir);
  apps.push(a);
  return a;
}

function prefix(): string {
  const p = testPrefix("outbox");
  prefixes.push(p);
  return p;
}

async function sideEffects(a: TestApp, userId: number) {
  const { db } = a.deps.database;
  const [emails, analytics, audits] = await Promise.all([
    db.select().from(emailOutbox).where(eq(emailOutbox.userId, userId)),
    db.select().from(analyticsEvents).where(eq(analyticsEvents.userId, userId)),
    db.select().from(auditLog).where(eq(auditLog.userId, userId)),
  ]);
  return { emails, analytics, audits };
}

/** Waits until each of the three side effects of registration exists for the user. */
async function waitForSideEffects(a: TestApp, userId: number, timeoutMs = 20_000) {
  return waitUntil(async () => {
    const s = await sideEffects(a, userId);
    return s.emails.length > 0 && s.analytics.length > 0 && s.audits.length > 0 ? s : null;
  }, timeoutMs, `the registration jobs of user ${userId}`);
}

async function register(a: TestApp, email: string): Promise<number> {
  const r = await a.json("POST", "/api/v1/users", { body: { email, password: "correct-horse", full_name: "Outbox Test" } });
  expect(r.status).toBe(201);
  return r.body.id as number;
}

/** Waits until the worker has recorded the three jobs' results and deleted their outbox rows. */
async function recordedResults(a: TestApp) {
  return waitUntil(async () => {
    const [rows, results] = await Promise.all([a.deps.database.db.select().from(outbox), a.deps.database.db.select().from(jobResults)]);
    return rows.length === 0 && results.length === 3 ? results : null;
  }, 20_000, "the jobs' results to be recorded");
}

/** Registers a user, waits for its three jobs to complete and then for their records to expire. */
async function finishedJobsExpire(a: TestApp, email: string): Promise<string[]> {
  await register(a, email);
  const ids = (await recordedResults(a)).map((r) => r.jobId);
  await waitUntil(async () => Object.values(await a.deps.queue.getJobs(ids)).every((j) => j?.status === "completed"), 20_000, "the jobs to complete");
  await waitUntil(async () => Object.values(await a.deps.queue.getJobs(ids)).every((j) => j === null), 20_000, "the job records to expire");
  return ids;
}

/** The jobs of one registration finish and their records expire; the worker deleted the rows, nothing re-runs. */
async function expectFinishedRowsDeleted(a: TestApp, email: string): Promise<void> {
  a.start();
  await finishedJobsExpire(a, email);
  const completed = (await a.deps.queue.stats()).completed_total;
  const relay = a.deps.outbox as OutboxRelay;
  expect(await relay.reconcileOnce()).toEqual({ deleted: 0, requeued: 0 });
  expect(await a.deps.database.db.select().from(outbox)).toHaveLength(0);
  expect((await a.deps.queue.stats()).completed_total).toBe(completed);
}

describe("with Redis", () => {
  test("registration with Redis unreachable succeeds; its jobs run once Redis is back", async () => {
    redis ??= await redisClient();
    const proxy = tcpProxy("127.0.0.1", Number(new URL(REDIS_URL).port || 6379));
    try {
      const a = await app({ REDIS_URL: proxy.url, REDIS_PREFIX: prefix() });
      a.start();
      proxy.close();
      const id = await register(a, "while-redis-down@example.com");
      // The rows are committed and the relay keeps failing: nothing has run.
      const pending = await waitUntil(async () => {
        const rows = await a.deps.database.db.select().from(outbox);
        return rows.length === 3 && rows.every((r) => r.attempts >= 1 && r.relayedAt === null && r.lastError) ? rows : null;
      }, 10_000, "relay attempts to fail");
      expect(pending.map((r) => r.jobType).sort()).toEqual(["log_user_audit", "process_user_analytics", "send_welcome_email"]);
      expect((await sideEffects(a, id)).emails).toHaveLength(0);

      proxy.open();
      const s = await waitForSideEffects(a, id);
      expect(s.emails).toHaveLength(1);
      expect(s.emails[0]).toMatchObject({ toEmail: "while-redis-down@example.com", subject: "Welcome to neodyme-edge" });
      expect(s.analytics).toHaveLength(1);
      expect(s.audits).toHaveLength(1);
      // The jobs are the queue's, under the ids the relay recorded (kept with their results once finished).
      const rows = await recordedResults(a);
      const byType = Object.fromEntries(rows.map((r) => [r.jobType, r.jobId]));
      expect(byType.send_welcome_email).toBe(s.emails[0]!.jobId);
      expect(byType.log_user_audit).toBe(s.audits[0]!.jobId);
      const job = await waitUntil(async () => {
        const j = await a.deps.queue.getJob(s.audits[0]!.jobId);
        return j?.status === "completed" ? j : null;
      });
      expect(job.type).toBe("log_user_audit");
    } finally {
      proxy.close();
    }
  }, 40_000);

  test("the process dies right after the commit: the jobs run when an instance starts again", async () => {
    redis ??= await redisClient();
    const dir = tempDir("outbox-");
    const p = prefix();
    const env = { ...testEnv({ REDIS_URL, REDIS_PREFIX: p }, dir), TEST_EMAIL: "died-after-commit@example.com" };
    const died = spawnBun(["test/fixtures/register-and-die.ts"], env);
    const code = await died.finished();
    expect(died.proc.signalCode).toBe("SIGKILL");
    expect(code).not.toBe(0);
    const id = Number(died.stdout().trim());
    expect(id).toBeGreaterThan(0);

    const a = await app({ REDIS_URL, REDIS_PREFIX: p }, dir);
    const before = await a.deps.database.db.select().from(outbox);
    expect(before.filter((r) => r.relayedAt === null)).toHaveLength(3);
    a.start();
    const s = await waitForSideEffects(a, id);
    expect([s.emails.length, s.analytics.length, s.audits.length]).toEqual([1, 1, 1]);
  }, 40_000);

  test("Redis loses relayed jobs (restart without persistence): they are relayed again under the same ids and run once", async () => {
    redis ??= await redisClient();
    const dir = tempDir("outbox-");
    const p = prefix();
    // An instance that relays but does not consume.
    const a = await app({ REDIS_URL, REDIS_PREFIX: p, JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" }, dir);
    a.start();
    const id = await register(a, "lost-by-redis@example.com");
    const relayed = await waitUntil(async () => {
      const rows = await a.deps.database.db.select().from(outbox);
      return rows.length === 3 && rows.every((r) => r.relayedAt !== null) ? rows : null;
    }, 10_000, "the rows to be relayed");
    const ids = relayed.map((r) => r.jobId!).sort();
    expect(Object.values(await a.deps.queue.getJobs(ids)).every((j) => j?.status === "pending")).toBe(true);

    await dropPrefix(redis, p); // what a Redis restart without persistence does to the queue
    const relay = a.deps.outbox as OutboxRelay;
    expect(await relay.reconcileOnce()).toEqual({ deleted: 0, requeued: 3 });
    await waitUntil(async () => Object.values(await a.deps.queue.getJobs(ids)).every((j) => j !== null), 10_000, "the jobs to be back");

    const worker = await app({ REDIS_URL, REDIS_PREFIX: p, CRON_ENABLED: "false" }, dir);
    worker.start();
    const s = await waitForSideEffects(worker, id);
    expect([s.emails.length, s.analytics.length, s.audits.length]).toEqual([1, 1, 1]);
    expect([s.emails[0]!.jobId, s.analytics[0]!.jobId, s.audits[0]!.jobId].sort()).toEqual(ids);
    await waitUntil(async () => Object.values(await a.deps.queue.getJobs(ids)).every((j) => j?.status === "completed"));
    // Finished jobs leave the outbox (the worker moves them to job_results); the reconciler finds nothing to do.
    expect((await recordedResults(a)).map((r) => r.jobId).sort()).toEqual(ids);
    expect(await relay.reconcileOnce()).toEqual({ deleted: 0, requeued: 0 });
    expect(await a.deps.database.db.select().from(outbox)).toHaveLength(0);
  }, 40_000);

  test("a finished job whose record has expired (short retention) is not relayed again: its row is deleted", async () => {
    redis ??= await redisClient();
    const p = prefix();
    const a = await app({ REDIS_URL, REDIS_PREFIX: p, CRON_ENABLED: "false", JOB_RETENTION_COMPLETED_SECONDS: "1" });
    await expectFinishedRowsDeleted(a, "short-retention@example.com");
  }, 40_000);

  // Issue 12: this used to relay the finished jobs again (a re-run that undid later writes of users).
  test("Redis loses its data after the jobs finished (their records expired): nothing is relayed again", async () => {
    redis ??= await redisClient();
    const p = prefix();
    const a = await app({ REDIS_URL, REDIS_PREFIX: p, CRON_ENABLED: "false", JOB_RETENTION_COMPLETED_SECONDS: "1" });
    a.start();
    await finishedJobsExpire(a, "short-retention-lost@example.com");
    await dropPrefix(redis, p); // what a Redis restart without persistence does to the queue
    const relay = a.deps.outbox as OutboxRelay;
    expect(await relay.reconcileOnce()).toEqual({ deleted: 0, requeued: 0 });
    expect(await a.deps.database.db.select().from(outbox)).toHaveLength(0);
  }, 40_000);

  test("two instances relaying the same outbox (local cluster) enqueue each job once", async () => {
    redis ??= await redisClient();
    const dir = tempDir("outbox-");
    const p = prefix();
    const a = await app({ REDIS_URL, REDIS_PREFIX: p, CRON_ENABLED: "false" }, dir);
    const b = await app({ REDIS_URL, REDIS_PREFIX: p, CRON_ENABLED: "false" }, dir);
    a.start();
    b.start();
    const users: number[] = [];
    for (let i = 0; i < 5; i++) users.push(await register(i % 2 ? a : b, `twin-${i}@example.com`));
    for (const id of users) {
      const s = await waitForSideEffects(a, id);
      expect([s.emails.length, s.analytics.length, s.audits.length]).toEqual([1, 1, 1]);
    }
    const rows = await a.deps.database.db.select().from(outbox);
    const jobIds = rows.map((r) => r.jobId);
    expect(new Set(jobIds).size).toBe(rows.length);
  }, 40_000);
});

describe("without Redis", () => {
  test("a finished job whose record has expired (short retention) is not relayed again: its row is deleted", async () => {
    const a = await app({ REDIS_URL: undefined, CRON_ENABLED: "false", JOB_RETENTION_COMPLETED_SECONDS: "1" });
    await expectFinishedRowsDeleted(a, "short-retention-memory@example.com");
  }, 40_000);

  test("registration's jobs run in process; jobs lost with the process are relayed again at the next start", async () => {
    const dir = tempDir("outbox-");
    const a = await app({ REDIS_URL: undefined, JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" }, dir);
    a.start();
    const id = await register(a, "no-redis@example.com");
    await waitUntil(async () => {
      const rows = await a.deps.database.db.select().from(outbox);
      return rows.length === 3 && rows.every((r) => r.relayedAt !== null);
    }, 10_000, "the rows to reach the in-process queue");
    await a.close(); // the in-process queue dies with its jobs
    apps.splice(apps.indexOf(a), 1);

    const b = await app({ REDIS_URL: undefined, CRON_ENABLED: "false" }, dir);
    b.start();
    const s = await waitForSideEffects(b, id);
    expect([s.emails.length, s.analytics.length, s.audits.length]).toEqual([1, 1, 1]);
    expect(b.deps.queue.kind).toBe("memory");
  }, 40_000);
});

