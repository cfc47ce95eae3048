// The jobs and admin routes of the contract, through app.handle: POST /admin/preferences/bulk, GET /jobs/{id},
// POST /jobs/status, GET /admin/cron (and GET /admin/jobs/failed). Real Redis on its own prefix.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { makeApp, REDIS_URL, testPrefix, type TestApp, dropPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { tcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "root@example.com", password: "admin-password-1" };
const prefix = testPrefix("jobs-api");
let a: TestApp;
let redis: Redis;
let admin: string;

beforeAll(async () => {
  redis = await redisClient();
  a = await makeApp({
    REDIS_URL,
    REDIS_PREFIX: prefix,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    JOB_BACKOFF_BASE_MS: "50",
  });
  a.start();
  admin = await a.login(ADMIN.email, ADMIN.password);
});

afterAll(async () => {
  await a.close();
  await dropPrefix(redis, prefix);
  await redis.close();
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

async function completed(app: TestApp, token: string, id: string) {
  return waitUntil(async () => {
    const r = await app.json("GET", `/api/v1/jobs/${id}`, { token });
    return r.status === 200 && (r.body.status === "completed" || r.body.status === "failed") ? r.body : null;
  }, 15_000, `job ${id}`);
}

describe("POST /admin/preferences/bulk", () => {
  test("202 with one job per user; the jobs merge the preferences and the cached reads see it", async () => {
    const u1 = await a.user();
    const u2 = await a.user();
    expect((await a.json("PATCH", `/api/v1/users/${u1.id}/preferences`, { token: u1.token, body: { theme: "light", keep: 1, drop: true } })).status).toBe(200);
    // Read (and cache) before the bulk update.
    expect((await a.json("GET", `/api/v1/users/${u1.id}/preferences`, { token: u1.token })).body).toEqual({ theme: "light", keep: 1, drop: true });

    const r = await a.json("POST", "/api/v1/admin/preferences/bulk", {
      token: admin,
      body: { user_ids: [u1.id, u2.id, u1.id], preference_updates: { theme: "dark", drop: null } },
    });
    expect(r.status).toBe(202);
    expect(Object.keys(r.body.jobs).sort()).toEqual([String(u1.id), String(u2.id)].sort());
    const ids = Object.values(r.body.jobs) as string[];
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) {
      const job = await completed(a, admin, id);
      expect(job).toMatchObject({ id, type: "update_user_preferences", status: "completed", retry_count: 0, error_message: null });
    }
    expect((await a.json("GET", `/api/v1/users/${u1.id}/preferences`, { token: u1.token })).body).toEqual({ theme: "dark", keep: 1 });
    expect((await a.json("GET", `/api/v1/users/${u2.id}/preferences`, { token: u2.token })).body).toEqual({ theme: "dark" });
    expect((await a.json("GET", `/api/v1/users/${u1.id}`, { token: u1.token })).body.preferences).toEqual({ theme: "dark", keep: 1 });
  }, 30_000);

  test("validation: 422 for no users, unknown users, bad keys, no updates; 401/403 for non-admins", async () => {
    const u = await a.user();
    const bulk = (body: unknown, token = admin) => a.json("POST", "/api/v1/admin/preferences/bulk", { token, body });
    const empty = await bulk({ user_ids: [], preference_updates: { a: 1 } });
    expect(empty.status).toBe(422);
    expect(empty.res.headers.get("content-type")).toContain("application/problem+json");
    const unknown = await bulk({ user_ids: [u.id, 987654], preference_updates: { a: 1 } });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toEqual([{ field: "user_ids", message: "no such users: 987654" }]);
    expect((await bulk({ user_ids: [u.id], preference_updates: { "bad key!": 1 } })).status).toBe(422);
    expect((await bulk({ user_ids: [u.id], preference_updates: {} })).status).toBe(422);
    expect((await bulk({ user_ids: [u.id], preference_updates: { a: { nested: 1 } } })).status).toBe(422);
    expect((await bulk({ user_ids: Array.from({ length: 1001 }, (_, i) => i + 1), preference_updates: { a: 1 } })).status).toBe(422);
    expect((await bulk({ user_ids: [u.id], preference_updates: { a: 1 } }, u.token)).status).toBe(403);
    expect((await a.json("POST", "/api/v1/admin/preferences/bulk", { body: { user_ids: [u.id], preference_updates: { a: 1 } } })).status).toBe(401);
    expect((await a.request("POST", "/api/v1/admin/preferences/bulk", { token: admin, body: "{not json" })).status).toBe(400);
  });

  test("a job whose user was deleted in the meantime fails at once and is listed in /admin/jobs/failed", async () => {
    const u = await a.user();
    // The bulk checks its users exist; one deleted after that leaves a job for nobody. Enqueue such a job
    // as the relay would.
    expect((await a.request("DELETE", `/api/v1/users/${u.id}`, { token: u.token })).status).toBe(204);
    const id = await a.deps.queue.enqueue("update_user_preferences", { user_id: u.id, preference_updates: { a: 1 } });
    const job = await completed(a, admin, id);
    expect(job.status).toBe("failed");
    expect(job.retry_count).toBe(0);
    expect(job.error_message).toContain(`User ${u.id} not found`);
    const failed = await a.json("GET", "/api/v1/admin/jobs/failed?limit=10", { token: admin });
    expect(failed.status).toBe(200);
    expect(failed.body.find((j: { id: string }) => j.id === id)).toMatchObject({ status: "failed", type: "update_user_preferences" });
  }, 30_000);
});

describe("GET /jobs/{id} and POST /jobs/status", () => {
  test("a job in the contract's shape; 404 for an unknown id; 401/403 for non-admins", async () => {
    const u = await a.user();
    const r = await a.json("POST", "/api/v1/admin/preferences/bulk", { token: admin, body: { user_ids: [u.id], preference_updates: { x: "y" } } });
    const id = r.body.jobs[String(u.id)] as string;
    const job = await completed(a, admin, id);
    expect(Object.keys(job).sort()).toEqual(
      ["completed_at", "created_at", "error_message", "id", "max_retries", "retry_count", "started_at", "status", "type"].sort(),
    );
    expect(job.created_at).toMatch(ISO);
    expect(job.started_at).toMatch(ISO);
    expect(job.completed_at).toMatch(ISO);
    expect(job.max_retries).toBe(3);

    const missing = await a.json("GET", "/api/v1/jobs/00000000-0000-7000-8000-000000000000", { token: admin });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ status: 404, title: "Not Found" });
    expect((await a.json("GET", "/api/v1/jobs/bad%20id", { token: admin })).status).toBe(422);
    expect((await a.json("GET", `/api/v1/jobs/${id}`, { token: u.token })).status).toBe(403);
    expect((await a.json("GET", `/api/v1/jobs/${id}`)).status).toBe(401);
  }, 30_000);

  test("status of several jobs at once, unknown ones as not_found", async () => {
    const u = await a.user();
    const r = await a.json("POST", "/api/v1/admin/preferences/bulk", { token: admin, body: { user_ids: [u.id], preference_updates: { y: 2 } } });
    const id = r.body.jobs[String(u.id)] as string;
    await completed(a, admin, id);
    const s = await a.json("POST", "/api/v1/jobs/status", { token: admin, body: { job_ids: [id, "nope-1", id] } });
    expect(s.status).toBe(200);
    expect(Object.keys(s.body).sort()).toEqual([id, "nope-1"].sort());
    expect(s.body[id]).toMatchObject({ id, status: "completed", type: "update_user_preferences" });
    expect(s.body["nope-1"]).toEqual({ status: "not_found" });
    expect((await a.json("POST", "/api/v1/jobs/status", { token: admin, body: { job_ids: [] } })).body).toEqual({});
    expect((await a.json("POST", "/api/v1/jobs/status", { token: admin, body: { job_ids: "x" } })).status).toBe(422);
    expect((await a.json("POST", "/api/v1/jobs/status", { token: admin, body: { job_ids: Array(1001).fill("a") } })).status).toBe(422);
    expect((await a.json("POST", "/api/v1/jobs/status", { token: u.token, body: { job_ids: [id] } })).status).toBe(403);
  }, 30_000);
});

describe("GET /admin/cron", () => {
  test("lists every schedule with its pattern, last run and next tick; admin only", async () => {
    const r = await a.json("GET", "/api/v1/admin/cron", { token: admin });
    expect(r.status).toBe(200);
    const cleanup = r.body.find((c: { name: string }) => c.name === "cleanup_expired_sessions");
    expect(cleanup).toMatchObject({ schedule: "*/15 * * * *", writes_db: true });
    for (const k of ["name", "schedule", "last_run_at", "last_instance", "last_status", "next_run_at"]) expect(cleanup).toHaveProperty(k);
    const next = new Date(cleanup.next_run_at);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(15 * 60_000);
    expect(next.getUTCMinutes() % 15).toBe(0);
    expect(next.getUTCSeconds()).toBe(0);
    const u = await a.user();
    expect((await a.json("GET", "/api/v1/admin/cron", { token: u.token })).status).toBe(403);
    expect((await a.json("GET", "/api/v1/admin/cron")).status).toBe(401);
  });
});

describe("with Redis unreachable", () => {
  let b: TestApp;
  let proxy: TcpProxy;
  const p2 = testPrefix("jobs-api-down");

  beforeAll(async () => {
    proxy = tcpProxy("127.0.0.1", Number(new URL(REDIS_URL).port || 6379));
    b = await makeApp({
      REDIS_URL: proxy.url,
      REDIS_PREFIX: p2,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      CRON_ENABLED: "false",
    });
    b.start();
  });
  afterAll(async () => {
    proxy.open();
    await b.close();
    proxy.close();
    await dropPrefix(redis, p2);
  });

  test("the bulk is accepted (durable in the outbox), its jobs read as pending, and they run once Redis is back", async () => {
    const token = await b.login(ADMIN.email, ADMIN.password);
    const u = await b.user();
    proxy.close();
    const r = await b.json("POST", "/api/v1/admin/preferences/bulk", { token, body: { user_ids: [u.id], preference_updates: { offline: true } } });
    expect(r.status).toBe(202);
    const id = r.body.jobs[String(u.id)] as string;
    const pending = await b.json("GET", `/api/v1/jobs/${id}`, { token });
    expect(pending.status).toBe(200);
    expect(pending.body).toMatchObject({ id, status: "pending", type: "update_user_preferences", started_at: null });
    // An id the outbox does not know cannot be answered while the queue is down.
    expect((await b.json("GET", "/api/v1/jobs/unknown-while-down", { token })).status).toBe(503);
    proxy.open();
    const job = await completed(b, token, id);
    expect(job.status).toBe("completed");
    expect((await b.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body).toEqual({ offline: true });
  }, 40_000);
});
