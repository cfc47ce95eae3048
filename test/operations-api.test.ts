// GET /api/v1/admin/operations and the failed-job actions: admin only; retry runs the job again as a new job,
// discard drops it; both are audited in the log; a second action on the same job is a 404.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { waitUntil } from "./support/wait.ts";
import { makeApp, REDIS_URL, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startFaultyServer, type FaultyServer } from "./support/faulty-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "ops-admin@example.com", password: "ops-admin-password" };

for (const redis of [REDIS_URL, undefined]) {
  describe(`operations API (${redis ? "Redis" : "in-process"} queue)`, () => {
    let mail: FaultyServer;
    let a: TestApp;
    let admin: string;
    const logs: string[] = [];
    beforeAll(async () => {
      mail = startFaultyServer();
      a = await makeApp(
        { REDIS_URL: redis, MAIL_API_URL: mail.url, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, CRON_ENABLED: "false", JOB_MAX_RETRIES: "0" },
        undefined,
        { logs },
      );
      a.start();
      admin = await a.login(ADMIN.email, ADMIN.password);
    });
    afterAll(async () => {
      await a.close();
      await mail.close();
    });

    const failedWelcome = async () => {
      mail.set({ kind: "fail", status: 400 });
      const u = await a.user();
      const job = await waitUntil(async () => {
        const list = (await a.json("GET", "/api/v1/admin/operations", { token: admin })).body.jobs.failed_jobs as { id: string; type: string; error_message: string }[];
        return list.find((j) => j.type === "send_welcome_email" && !seen.has(j.id));
      }, 10_000, "a failed welcome job");
      seen.add(job.id);
      return { job, user: u };
    };
    const seen = new Set<string>();

    test("admin only", async () => {
      expect((await a.json("GET", "/api/v1/admin/operations")).status).toBe(401);
      const u = await a.user();
      expect((await a.json("GET", "/api/v1/admin/operations", { token: u.token })).status).toBe(403);
      expect((await a.json("POST", "/api/v1/admin/jobs/abc/retry", { token: u.token })).status).toBe(403);
    });

    test("shows breakers, the scaler, the queue and this instance's history", async () => {
      const r = await a.json("GET", "/api/v1/admin/operations", { token: admin });
      expect(r.status).toBe(200);
      expect(r.body.breakers.map((b: { dependency: string }) => b.dependency)).toContain("mail_api");
      expect(r.body.scaler).toMatchObject({ mode: "dry-run", enabled: false, decisions: [] });
      expect(r.body.jobs.available).toBe(true);
      expect(r.body.history).toMatchObject({ step_seconds: 10 });
    });

    test("a failed job is retried as a new job, once; the action is audited", async () => {
      const { job } = await failedWelcome();
      expect(job.error_message).toContain("mail API answered 400");
      const byType = (await a.json("GET", "/api/v1/admin/operations", { token: admin })).body.jobs.by_type as { type: string; failed: number }[];
      expect(byType.find((t) => t.type === "send_welcome_email")?.failed).toBeGreaterThanOrEqual(1);
      mail.set({ kind: "ok" });
      const r = await a.json("POST", `/api/v1/admin/jobs/${job.id}/retry`, { token: admin });
      expect(r.status).toBe(200);
      expect(r.body.retried).toBe(job.id);
      const fresh = await waitUntil(async () => {
        const j = (await a.json("GET", `/api/v1/jobs/${r.body.job_id}`, { token: admin })).body;
        return j?.status === "completed" ? j : null;
      }, 10_000, "the new job to complete");
      expect(fresh.type).toBe("send_welcome_email");
      expect((await a.json("POST", `/api/v1/admin/jobs/${job.id}/retry`, { token: admin })).status).toBe(404);
      const ops = (await a.json("GET", "/api/v1/admin/operations", { token: admin })).body;
      expect(ops.jobs.failed_jobs.map((j: { id: string }) => j.id)).not.toContain(job.id);
      expect(ops.jobs.runs_here_by_type).toContainEqual(expect.objectContaining({ type: "send_welcome_email", failed: expect.any(Number), completed: expect.any(Number) }));
      const line = logs.map((l) => JSON.parse(l)).find((l) => l.audit === true && l.action === "retry" && l.job_id === job.id);
      expect(line).toMatchObject({ new_job_id: r.body.job_id, by_user: expect.any(Number) });
    }, 30_000);

    test("a failed job is discarded, once; the action is audited", async () => {
      const { job } = await failedWelcome();
      expect((await a.request("POST", `/api/v1/admin/jobs/${job.id}/discard`, { token: admin })).status).toBe(204);
      expect((await a.request("POST", `/api/v1/admin/jobs/${job.id}/discard`, { token: admin })).status).toBe(404);
      // Gone from the failed list (its durable record in job_results, if any, still answers GET /jobs/{id}).
      const ops = (await a.json("GET", "/api/v1/admin/operations", { token: admin })).body;
      expect(ops.jobs.failed_jobs.map((j: { id: string }) => j.id)).not.toContain(job.id);
      expect(logs.some((l) => l.includes('"action":"discard"') && l.includes(job.id))).toBe(true);
      mail.set({ kind: "ok" });
    }, 30_000);
  });
}
