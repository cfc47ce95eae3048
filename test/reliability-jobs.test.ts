// Completion is durable where the write is: a private Redis wiped after or during a bulk preference update
// undoes no user's write, re-runs no finished job, and every accepted job keeps answering on GET /jobs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { JobHandler } from "../src/platform/jobs/port.ts";
import type { OutboxRelay } from "../src/platform/jobs/relay.ts";
import { makeApp, tempDir, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { ADMIN_EMAIL: "boss@example.com", ADMIN_PASSWORD: "boss-password" };
const PREFS = "update_user_preferences";
let redis: PrivateRedis;
const apps: TestApp[] = [];

beforeAll(async () => {
  redis = await startPrivateRedis();
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await redis.stop();
});

async function app(overrides: Record<string, string | undefined>, dir?: string): Promise<TestApp> {
  const a = await makeApp({ CRON_ENABLED: "false", JOB_BACKOFF_BASE_MS: "20", SHUTDOWN_TIMEOUT_MS: "2000", ...ADMIN, ...overrides }, dir);
  apps.push(a);
  return a;
}

/** Counts the preference jobs' runs, and the runs of a job that had already completed (a re-run). */
function countRuns(a: TestApp, delayMs = 0) {
  const def = a.deps.queue.definition(PREFS)!;
  const completed = new Set<string>();
  const counts = { runs: 0, reruns: 0 };
  const handler: JobHandler<any> = async (p, ctx) => {
    counts.runs++;
    if (completed.has(ctx.jobId)) counts.reruns++;
    if (delayMs > 0) await Bun.sleep(delayMs);
    await def.handler(p, ctx);
    completed.add(ctx.jobId);
  };
  a.deps.queue.register({ ...def, handler });
  return { counts, completed };
}

async function users(a: TestApp, n: number) {
  const out: { id: number; token: string }[] = [];
  // A few at a time: password hashing dominates, and the hash pool takes two at once.
  for (let i = 0; i < n; i += 4) out.push(...(await Promise.all(Array.from({ length: Math.min(4, n - i) }, () => a.user()))));
  return out;
}

/**
 * One more preference job, for a user of its own, through the outbox and the worker: a re-run still to come
 * (a row relayed again, a job requeued) would have been relayed and delivered before it has run.
 */
async function markerJob(a: TestApp, admin: string): Promise<void> {
  const [m] = await users(a, 1);
  const r = await a.json("POST", "/api/v1/admin/preferences/bulk", { token: admin, body: { user_ids: [m!.id], preference_updates: { marker: true } } });
  expect(r.status).toBe(202);
  const id = r.body.jobs[String(m!.id)];
  await waitUntil(async () => (await a.json("GET", `/api/v1/jobs/${id}`, { token: admin })).body?.status === "completed", 60_000, "the marker job");
}

async function statuses(a: TestApp, admin: string, ids: string[]): Promise<Record<string, { status: string; completed_at?: string; started_at?: string }>> {
  const r = await a.json("POST", "/api/v1/jobs/status", { token: admin, body: { job_ids: ids } });
  expect(r.status).toBe(200);
  return r.body;
}

const allCompleted = (s: Record<string, { status: string }>) => Object.values(s).every((j) => j.status === "completed");

describe("a private Redis wiped", () => {
  test("after the bulk jobs completed and users wrote their own values: nothing undone, nothing re-run, every job answers", async () => {
    const a = await app({ REDIS_URL: redis.url });
    const { counts } = countRuns(a);
    a.start();
    const admin = await a.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
    const us = await users(a, 16);
    const bulk = await a.json("POST", "/api/v1/admin/preferences/bulk", {
      token: admin,
      body: { user_ids: us.map((u) => u.id), preference_updates: { theme: "dark", lang: "en" } },
    });
    expect(bulk.status).toBe(202);
    const jobIds = Object.values(bulk.body.jobs as Record<string, string>);
    const before = await waitUntil(async () => {
      const s = await statuses(a, admin, jobIds);
      return allCompleted(s) ? s : null;
    }, 60_000, "the bulk jobs to complete");
    for (const [i, u] of us.entries()) {
      const r = await a.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: `own-${i}` } });
      expect(r.status).toBe(200);
    }

    await redis.wipe();
    // Every accepted job still answers, with the same record, from the database.
    const after = await statuses(a, admin, jobIds);
    for (const id of jobIds) {
      expect(after[id]!.status).toBe("completed");
      // The worker's clock and Redis's script clock differ by a few ms; a re-run would start anew, seconds later.
      expect(Math.abs(Date.parse(after[id]!.started_at!) - Date.parse(before[id]!.started_at!))).toBeLessThan(1_000);
    }
    expect((await a.json("GET", `/api/v1/jobs/${jobIds[0]}`, { token: admin })).status).toBe(200);
    expect(await (a.deps.outbox as OutboxRelay).reconcileOnce()).toEqual({ deleted: 0, requeued: 0 });
    await markerJob(a, admin);
    expect(counts).toEqual({ runs: 16 + 1, reruns: 0 }); // the bulk's and the marker's
    for (const [i, u] of us.entries()) {
      const r = await a.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
      expect(r.body).toEqual({ theme: `own-${i}`, lang: "en" });
    }
  }, 150_000);

  test("while the bulk jobs run: the lost ones run once, no completed one again, no user write undone, no job unknown", async () => {
    const a = await app({ REDIS_URL: redis.url, JOB_CONCURRENCY: "2" });
    const { counts, completed } = countRuns(a, 20);
    a.start();
    const admin = await a.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
    const us = await users(a, 32);
    const bulk = await a.json("POST", "/api/v1/admin/preferences/bulk", {
      token: admin,
      body: { user_ids: us.map((u) => u.id), preference_updates: { theme: "dark", lang: "en" } },
    });
    expect(bulk.status).toBe(202);
    const jobIds = Object.values(bulk.body.jobs as Record<string, string>);
    // Every user writes their own theme while the jobs run: a job accepted before must not overwrite it.
    const writes = Promise.all(
      us.map(async (u, i) => {
        await Bun.sleep((i % 16) * 20);
        const r = await a.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: `own-${i}` } });
        if (r.status !== 200) console.error(r.body);
        expect(r.status).toBe(200);
      }),
    );
    await waitUntil(() => completed.size >= 8, 60_000, "some jobs to complete");
    await redis.wipe();
    await writes;
    let unknown = 0;
    const polls = (async () => {
      for (let i = 0; i < 20; i++) {
        const s = await statuses(a, admin, jobIds);
        unknown += Object.values(s).filter((j) => j.status === "not_found").length;
        await Bun.sleep(25);
      }
    })();
    const { requeued } = await (a.deps.outbox as OutboxRelay).reconcileOnce();
    expect(requeued).toBeGreaterThan(0);
    await polls;
    await waitUntil(async () => allCompleted(await statuses(a, admin, jobIds)), 60_000, "every job to complete");
    expect(unknown).toBe(0);
    expect(counts.reruns).toBe(0);
    expect(completed.size).toBe(32);
    for (const [i, u] of us.entries()) {
      const r = await a.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
      expect(r.body).toEqual({ theme: `own-${i}`, lang: "en" });
    }
  }, 180_000);
});

describe("bulk preferences never overwrite a newer write", () => {
  test("a job accepted before the user's write leaves that key alone and sets the others", async () => {
    const a = await app({ REDIS_URL: redis.url, JOBS_WORKER_ENABLED: "false" });
    a.start();
    const admin = await a.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
    const [u] = await users(a, 1);
    const bulk = await a.json("POST", "/api/v1/admin/preferences/bulk", {
      token: admin,
      body: { user_ids: [u!.id], preference_updates: { theme: "dark", lang: "en", beta: null } },
    });
    expect(bulk.status).toBe(202);
    await Bun.sleep(5);
    await a.json("PATCH", `/api/v1/users/${u!.id}/preferences`, { token: u!.token, body: { theme: "light", beta: true } });
    a.deps.queue.start({ canWrite: () => true });
    const jobId = bulk.body.jobs[String(u!.id)];
    await waitUntil(async () => (await a.json("GET", `/api/v1/jobs/${jobId}`, { token: admin })).body?.status === "completed", 60_000, "the job");
    expect((await a.json("GET", `/api/v1/users/${u!.id}/preferences`, { token: u!.token })).body).toEqual({ theme: "light", lang: "en", beta: true });
  }, 90_000);
});

describe("without Redis", () => {
  test("a finished job is known after a restart and does not run again", async () => {
    const dir = tempDir("rel-");
    const a = await app({ REDIS_URL: undefined }, dir);
    a.start();
    const admin = await a.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
    const [u] = await users(a, 1);
    const bulk = await a.json("POST", "/api/v1/admin/preferences/bulk", { token: admin, body: { user_ids: [u!.id], preference_updates: { theme: "dark" } } });
    const jobId = bulk.body.jobs[String(u!.id)];
    await waitUntil(async () => (await a.json("GET", `/api/v1/jobs/${jobId}`, { token: admin })).body?.status === "completed", 60_000, "the job");
    await a.close();
    apps.splice(apps.indexOf(a), 1);

    const b = await app({ REDIS_URL: undefined }, dir);
    const { counts } = countRuns(b);
    b.start();
    const r = await b.json("GET", `/api/v1/jobs/${jobId}`, { token: await b.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD) });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("completed");
    expect(await (b.deps.outbox as OutboxRelay).reconcileOnce()).toEqual({ deleted: 0, requeued: 0 });
    await markerJob(b, await b.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD));
    expect(counts).toEqual({ runs: 1, reruns: 0 }); // the marker's only
  }, 60_000);
});
