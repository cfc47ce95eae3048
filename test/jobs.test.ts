// The queue's guarantees for both adapters (Redis streams and the in-process queue): runs, retries and
// backoff, failure, idempotency, concurrency, delays, database-writing jobs, close. Real Redis, own key prefix.
// The Redis adapter's holds and takeovers: jobs-takeovers.test.ts; retention: jobs-retention.test.ts.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { backoffDelay, PermanentJobError } from "../src/platform/jobs/port.ts";
import { always, finished, passedBy, queueFile, queueOptions } from "./fixtures/queues.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const { newPrefix, queue } = queueFile("jobs");

test("backoff: exponential steps, equal jitter, capped", () => {
  expect(backoffDelay(1, 100, 10_000, () => 0)).toBe(50);
  expect(backoffDelay(1, 100, 10_000, () => 1)).toBe(100);
  expect(backoffDelay(2, 100, 10_000, () => 0)).toBe(100);
  expect(backoffDelay(3, 100, 10_000, () => 1)).toBe(400);
  expect(backoffDelay(20, 100, 1_000, () => 1)).toBe(1_000);
  expect(backoffDelay(20, 100, 1_000, () => 0)).toBe(500);
});

for (const adapter of ["redis", "memory"] as const) {
  describe(`${adapter} queue`, () => {
    test("a job runs with its payload; it is running during the handler and completed only after it returns", async () => {
      const q = queue(adapter);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const seen: unknown[] = [];
      q.register({
        type: "echo",
        writesDb: false,
        handler: async (p, ctx) => {
          seen.push({ p, attempt: ctx.attempt, id: ctx.jobId });
          await gate;
        },
      });
      const id = await q.enqueue("echo", { hello: "world", n: 1 });
      expect((await q.getJob(id))?.status).toBe("pending");
      q.start(always);
      const running = await waitUntil(async () => {
        const j = await q.getJob(id);
        return j?.status === "running" ? j : null;
      });
      expect(running.started_at).not.toBeNull();
      expect(running.completed_at).toBeNull();
      release();
      const done = await finished(q, id);
      expect(done).toMatchObject({ id, type: "echo", status: "completed", retry_count: 0, max_retries: 3, error_message: null });
      expect(Date.parse(done.completed_at!)).toBeGreaterThanOrEqual(Date.parse(done.started_at!));
      expect(seen).toEqual([{ p: { hello: "world", n: 1 }, attempt: 1, id }]);
    });

    test("retries with exponential backoff, then completes; retry_count and attempts are counted", async () => {
      const base = 40;
      const q = queue(adapter, { backoffBaseMs: base, backoffCapMs: 10_000 });
      const times: number[] = [];
      const attempts: number[] = [];
      q.register({
        type: "flaky",
        writesDb: false,
        handler: async (_p, ctx) => {
          times.push(performance.now());
          attempts.push(ctx.attempt);
          if (times.length < 4) throw new Error(`failure ${times.length}`);
        },
      });
      q.start(always);
      const id = await q.enqueue("flaky", {}, { maxRetries: 5 });
      const job = await finished(q, id);
      expect(job.status).toBe("completed");
      expect(job.retry_count).toBe(3);
      expect(job.max_retries).toBe(5);
      expect(attempts).toEqual([1, 2, 3, 4]);
      // Each wait is at least half its exponential step (equal jitter): 20, 40, 80 ms for a 40 ms base.
      for (let i = 1; i < times.length; i++) {
        expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual((base * 2 ** (i - 1)) / 2 - 2);
      }
    });

    test("after max_retries the job is failed, with the last error, and listed in the failed set", async () => {
      const q = queue(adapter);
      let n = 0;
      q.register({
        type: "doomed",
        writesDb: false,
        handler: async () => {
          throw new Error(`attempt ${++n} broke`);
        },
      });
      q.start(always);
      const id = await q.enqueue("doomed", { x: 1 }, { maxRetries: 2 });
      const job = await finished(q, id);
      expect(job).toMatchObject({ status: "failed", retry_count: 2, max_retries: 2, error_message: "attempt 3 broke" });
      expect(job.completed_at).not.toBeNull();
      expect(n).toBe(3);
      const failed = await q.listFailed(10);
      expect(failed.map((j) => j.id)).toContain(id);
      expect(failed.find((j) => j.id === id)?.error_message).toBe("attempt 3 broke");
      expect((await q.stats()).failed).toBeGreaterThanOrEqual(1);
    });

    test("a permanent error fails the job at once", async () => {
      const q = queue(adapter);
      let n = 0;
      q.register({
        type: "bad_input",
        writesDb: false,
        handler: async () => {
          n++;
          throw new PermanentJobError("no such user");
        },
      });
      q.start(always);
      const job = await finished(q, await q.enqueue("bad_input", {}, { maxRetries: 5 }));
      expect(job).toMatchObject({ status: "failed", retry_count: 0, error_message: "PermanentJobError: no such user" });
      expect(n).toBe(1);
    });

    test("the same idempotency key gives the same job id, and the job runs once", async () => {
      const q = queue(adapter);
      let runs = 0;
      q.register({ type: "once", writesDb: false, handler: async () => void runs++ });
      const a = await q.enqueue("once", { v: 1 }, { idempotencyKey: "welcome:42" });
      const b = await q.enqueue("once", { v: 2 }, { idempotencyKey: "welcome:42" });
      const [c, d, e] = await q.enqueueMany([
        { type: "once", payload: {}, idempotencyKey: "welcome:42" },
        { type: "once", payload: {}, idempotencyKey: "welcome:43" },
        { type: "once", payload: {}, idempotencyKey: "welcome:43" },
      ]);
      expect(b).toBe(a);
      expect(c).toBe(a);
      expect(e).toBe(d!);
      expect(d).not.toBe(a);
      q.start(always);
      await finished(q, a);
      await finished(q, d!);
      await passedBy(q);
      expect(runs).toBe(2);
      // After completion the key still maps to the finished job (for the retention).
      expect(await q.enqueue("once", {}, { idempotencyKey: "welcome:42" })).toBe(a);
    });

    test("an explicit job id is kept, and enqueueing it again is a no-op", async () => {
      const q = queue(adapter);
      let runs = 0;
      q.register({ type: "fixed", writesDb: false, handler: async () => void runs++ });
      const id = "0190f1e2-aaaa-7bbb-8ccc-000000000001";
      expect(await q.enqueue("fixed", {}, { jobId: id })).toBe(id);
      q.start(always);
      await finished(q, id);
      expect(await q.enqueue("fixed", {}, { jobId: id })).toBe(id);
      await passedBy(q);
      expect(runs).toBe(1);
    });

    test("at most JOB_CONCURRENCY handlers run at once on an instance", async () => {
      const q = queue(adapter, { concurrency: 3 });
      let now = 0;
      let max = 0;
      q.register({
        type: "slow",
        writesDb: false,
        handler: async () => {
          max = Math.max(max, ++now);
          await Bun.sleep(40);
          now--;
        },
      });
      const ids = await q.enqueueMany(Array.from({ length: 15 }, (_, i) => ({ type: "slow", payload: { i } })));
      q.start(always);
      for (const id of ids) await finished(q, id);
      expect(max).toBe(3);
    });

    test("a delayed job does not start before its delay", async () => {
      const q = queue(adapter);
      let startedAt = 0;
      q.register({ type: "later", writesDb: false, handler: async () => void (startedAt = performance.now()) });
      q.start(always);
      const t0 = performance.now();
      const id = await q.enqueue("later", {}, { delayMs: 300 });
      await finished(q, id);
      expect(startedAt - t0).toBeGreaterThanOrEqual(295);
    });

    test("jobs that write the database run only where writes are possible", async () => {
      const prefix = newPrefix();
      let canWrite = false;
      const runs: string[] = [];
      const q = queue(adapter, {}, prefix);
      q.register({ type: "db_write", writesDb: true, handler: async (p) => void runs.push(`db:${p.n}`) });
      q.register({ type: "no_db", writesDb: false, handler: async (p) => void runs.push(`any:${p.n}`) });
      q.start({ canWrite: () => canWrite });
      const dbJob = await q.enqueue("db_write", { n: 1 });
      const anyJob = await q.enqueue("no_db", { n: 2 });
      await finished(q, anyJob);
      // Another round of the worker after that one: the database job is still left alone.
      await finished(q, await q.enqueue("no_db", { n: 3 }));
      expect(runs).toEqual(["any:2", "any:3"]);
      expect((await q.getJob(dbJob))?.status).toBe("pending");
      canWrite = true; // promoted to primary
      await finished(q, dbJob);
      expect(runs).toEqual(["any:2", "any:3", "db:1"]);
    }, 15_000);

    test("a job type without a handler is retried and then failed with a clear error", async () => {
      const q = queue(adapter);
      q.start(always);
      const job = await finished(q, await q.enqueue("nobody_handles_this", {}, { maxRetries: 1 }));
      expect(job.status).toBe("failed");
      expect(job.error_message).toContain('no handler registered for job type "nobody_handles_this"');
    });

    test("close() waits for running handlers to finish", async () => {
      const q = queue(adapter);
      let finishedRun = false;
      q.register({
        type: "tail",
        writesDb: false,
        handler: async () => {
          await Bun.sleep(300);
          finishedRun = true;
        },
      });
      q.start(always);
      const id = await q.enqueue("tail", {});
      await waitUntil(async () => (await q.getJob(id))?.status === "running");
      await q.close();
      expect(finishedRun).toBe(true);
      expect((await q.getJob(id))?.status).toBe("completed");
    });
  });
}

test("queue options come from the configuration", async () => {
  const { loadConfig } = await import("../src/config.ts");
  const { queueOptions: queueOptionsFromConfig } = await import("../src/main/options.ts");
  const { createLogger } = await import("../src/platform/observability/logger.ts");
  const o = queueOptionsFromConfig(
    loadConfig({ JOB_CONCURRENCY: "12", JOB_VISIBILITY_TIMEOUT_MS: "45000", JOB_RETENTION_COMPLETED_SECONDS: "60", INSTANCE_ID: "i-1" }),
    createLogger("silent"),
  );
  expect(o).toMatchObject({ concurrency: 12, visibilityTimeoutMs: 45_000, retentionCompletedMs: 60_000, maxRetries: 3 });
  expect(o.consumerName.startsWith("i-1:")).toBe(true);
  expect(queueOptions().concurrency).toBe(4);
});
