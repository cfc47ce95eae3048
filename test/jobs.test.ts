// The queue's guarantees, for both adapters where they share them (Redis streams and the in-process queue),
// and the Redis-only ones (holds, takeovers, hand-back at shutdown, data loss). Real Redis, own key prefix.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { backoffDelay, PermanentJobError, type JobQueue } from "../src/platform/jobs/port.ts";
import { GROUP, RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { makeQueue, queueKey, queueOptions, redisClient, type Adapter } from "./fixtures/queues.ts";
import { testPrefix, dropPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const prefixes: string[] = [];
let open: JobQueue[] = [];

beforeAll(async () => {
  redis = await redisClient();
});
afterEach(async () => {
  await Promise.all(open.map((q) => q.close()));
  open = [];
});
afterAll(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  await redis.close();
});

function newPrefix(): string {
  const p = testPrefix("jobs");
  prefixes.push(p);
  return p;
}

function queue(adapter: Adapter, overrides: Parameters<typeof makeQueue>[3] = {}, prefix = newPrefix()): JobQueue {
  const q = makeQueue(adapter, redis, prefix, overrides);
  open.push(q);
  return q;
}

const always = { canWrite: () => true };
const finished = (q: JobQueue, id: string) =>
  waitUntil(async () => {
    const j = await q.getJob(id);
    return j && (j.status === "completed" || j.status === "failed") ? j : null;
  }, 15_000, `job ${id} to finish`);

/**
 * Enqueues a job that does nothing and waits until it has finished: anything enqueued before it has been
 * delivered by then, so a run that was (wrongly) still to come would have started.
 */
async function passedBy(q: JobQueue): Promise<void> {
  if (!q.definition("test_marker")) q.register({ type: "test_marker", writesDb: false, handler: async () => {} });
  const job = await finished(q, await q.enqueue("test_marker", {}));
  expect(job.status).toBe("completed");
}

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

describe("retention", () => {
  test("redis: finished records (and their idempotency keys) expire after their retention; the failed set is trimmed", async () => {
    const prefix = newPrefix();
    const q = queue("redis", { retentionCompletedMs: 5_000, retentionFailedMs: 9_000 }, prefix) as RedisQueue;
    q.register({ type: "ok", writesDb: false, handler: async () => {} });
    q.register({
      type: "ko",
      writesDb: false,
      handler: async () => {
        throw new PermanentJobError("x");
      },
    });
    q.start(always);
    const ok = await q.enqueue("ok", {}, { idempotencyKey: "k-ok" });
    const ko = await q.enqueue("ko", {});
    await finished(q, ok);
    await finished(q, ko);
    const okTtl = await redis.pTTL(queueKey(prefix, `job:${ok}`));
    const idemTtl = await redis.pTTL(queueKey(prefix, "idem:k-ok"));
    const koTtl = await redis.pTTL(queueKey(prefix, `job:${ko}`));
    expect(okTtl).toBeGreaterThan(0);
    expect(okTtl).toBeLessThanOrEqual(5_000);
    expect(idemTtl).toBeGreaterThan(0);
    expect(idemTtl).toBeLessThanOrEqual(5_000);
    expect(koTtl).toBeGreaterThan(5_000);
    expect(koTtl).toBeLessThanOrEqual(9_000);
    // The stream holds no finished entry (acknowledged entries are deleted, not just acked).
    expect(await redis.xLen(queueKey(prefix, "stream:any"))).toBe(0);
  });

  for (const adapter of ["redis", "memory"] as const) {
    test(`${adapter}: a tracked job (the outbox's) keeps a finished marker past its record's retention until forgotten`, async () => {
      const q = queue(adapter, { retentionCompletedMs: 1_000, retentionFailedMs: 1_000 });
      let runs = 0;
      q.register({ type: "ok", writesDb: false, handler: async () => void runs++ });
      q.register({
        type: "ko",
        writesDb: false,
        handler: async () => {
          throw new PermanentJobError("x");
        },
      });
      q.start(always);
      const [ok, ko, untracked] = await q.enqueueMany([
        { type: "ok", payload: {}, jobId: crypto.randomUUID(), tracked: true },
        { type: "ko", payload: {}, jobId: crypto.randomUUID(), tracked: true },
        { type: "ok", payload: {} },
      ]);
      for (const id of [ok!, ko!, untracked!]) await finished(q, id);
      await waitUntil(async () => Object.values(await q.getJobs([ok!, ko!, untracked!])).every((j) => j === null), 10_000, "the records to expire");
      expect([...(await q.finishedTracked([ok!, ko!, untracked!]))].sort()).toEqual([ok!, ko!].sort());
      // Relayed again (the same id): the same finished job, not a new run.
      expect(await q.enqueueMany([{ type: "ok", payload: {}, jobId: ok!, tracked: true }])).toEqual([ok!]);
      expect(await q.getJob(ok!)).toBeNull();
      expect(runs).toBe(2);
      await q.forgetFinished([ok!, ko!]);
      expect((await q.finishedTracked([ok!, ko!])).size).toBe(0);
    }, 20_000);
  }

  test("memory: finished records are dropped after their retention", async () => {
    const q = queue("memory", { retentionCompletedMs: 150, retentionFailedMs: 150 });
    q.register({ type: "ok", writesDb: false, handler: async () => {} });
    q.start(always);
    const id = await q.enqueue("ok", {}, { idempotencyKey: "k" });
    await finished(q, id);
    await waitUntil(async () => (await q.getJob(id)) === null, 5_000, "the record to expire");
    // The key expired with the record: a new job.
    expect(await q.enqueue("ok", {}, { idempotencyKey: "k" })).not.toBe(id);
  });
});

describe("redis: holds and takeovers", () => {
  test("a long handler extends its hold: no other worker runs the job, even past the visibility timeout", async () => {
    const prefix = newPrefix();
    const runs: string[] = [];
    const mk = (name: string) => {
      const q = queue("redis", { visibilityTimeoutMs: 300, consumerName: name }, prefix);
      q.register({
        type: "long",
        writesDb: false,
        handler: async () => {
          runs.push(name);
          await Bun.sleep(1_500);
        },
      });
      return q;
    };
    const a = mk("worker-a");
    const b = mk("worker-b");
    a.start(always);
    const id = await a.enqueue("long", {});
    await waitUntil(async () => (await a.getJob(id))?.status === "running");
    b.start(always);
    const job = await finished(a, id);
    expect(job.status).toBe("completed");
    expect(job.retry_count).toBe(0);
    expect(runs).toEqual(["worker-a"]);
  }, 15_000);

  test("a worker that loses its hold has its handler aborted, and its late outcome is not recorded", async () => {
    const prefix = newPrefix();
    let firstSignal: AbortSignal | undefined;
    let lateFailureThrown = false;
    const q = queue("redis", { visibilityTimeoutMs: 600, consumerName: "holder" }, prefix) as RedisQueue;
    q.register({
      type: "stolen",
      writesDb: false,
      handler: async (_p, ctx) => {
        if (ctx.attempt > 1) return;
        firstSignal = ctx.signal;
        await Bun.sleep(1_500);
        lateFailureThrown = true;
        throw new Error("late failure that must not count");
      },
    });
    q.start(always);
    const id = await q.enqueue("stolen", {});
    await waitUntil(() => firstSignal !== undefined);
    // Another consumer takes the delivery over (as XAUTOCLAIM does after a stall), then goes silent.
    const [entry] = (await redis.sendCommand(["XPENDING", queueKey(prefix, "stream:any"), GROUP, "-", "+", "10"])) as [string][];
    await redis.sendCommand(["XCLAIM", queueKey(prefix, "stream:any"), GROUP, "thief", "0", entry![0]]);
    await waitUntil(() => firstSignal!.aborted, 5_000, "the first run's signal to abort");
    // The silent thief's delivery is taken over in turn (a retry), and that run completes.
    const job = await finished(q, id);
    expect(job).toMatchObject({ status: "completed", retry_count: 1, error_message: null });
    await waitUntil(() => lateFailureThrown, 5_000, "the first run to throw");
    // A job run after the throw: the worker has handled that outcome by then.
    await passedBy(q);
    // The aborted first run's late failure changed nothing (a recorded failure would have scheduled a retry).
    expect(await q.getJob(id)).toMatchObject({ status: "completed", retry_count: 1, error_message: null });
  }, 15_000);

  test("a delivery whose worker stopped answering is taken over after the visibility timeout and counted as a retry", async () => {
    const prefix = newPrefix();
    const q = queue("redis", { visibilityTimeoutMs: 400, consumerName: "survivor" }, prefix) as RedisQueue;
    let attempt = 0;
    q.register({ type: "orphan", writesDb: false, handler: async (_p, ctx) => void (attempt = ctx.attempt) });
    const id = await q.enqueue("orphan", {});
    // A worker that read the entry, marked it running, and died (no extension, no ack).
    await redis.sendCommand(["XGROUP", "CREATE", queueKey(prefix, "stream:any"), GROUP, "0", "MKSTREAM"]);
    await redis.sendCommand(["XREADGROUP", "GROUP", GROUP, "dead-worker", "COUNT", "1", "STREAMS", queueKey(prefix, "stream:any"), ">"]);
    await redis.hSet(queueKey(prefix, `job:${id}`), { status: "running", started_at: String(Date.now()) });
    q.start(always);
    const job = await finished(q, id);
    expect(job.status).toBe("completed");
    expect(job.retry_count).toBe(1);
    expect(attempt).toBe(2);
  });

  test("close() past its grace aborts a stuck handler and hands the job back at once to another worker", async () => {
    const prefix = newPrefix();
    const runs: string[] = [];
    const stuck = queue("redis", { shutdownGraceMs: 200, visibilityTimeoutMs: 60_000, consumerName: "stuck" }, prefix);
    let aborted = false;
    stuck.register({
      type: "hang",
      writesDb: false,
      handler: async (_p, ctx) => {
        runs.push("stuck");
        await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r()));
        aborted = true;
      },
    });
    stuck.start(always);
    const id = await stuck.enqueue("hang", {});
    await waitUntil(async () => (await stuck.getJob(id))?.status === "running");
    await stuck.close();
    expect(aborted).toBe(true);
    expect((await stuck.getJob(id))?.status).toBe("pending");
    // With a 60 s visibility timeout only the hand-back can explain a prompt second run.
    const other = queue("redis", { consumerName: "other" }, prefix);
    other.register({ type: "hang", writesDb: false, handler: async () => void runs.push("other") });
    other.start(always);
    const job = await waitUntil(async () => {
      const j = await other.getJob(id);
      return j?.status === "completed" ? j : null;
    }, 5_000, "the handed-back job to complete");
    expect(job.retry_count).toBe(0);
    expect(runs).toEqual(["stuck", "other"]);
  });

  test("Redis losing the queue's keys (restart without persistence): the worker recreates its group and goes on", async () => {
    const prefix = newPrefix();
    const q = queue("redis", {}, prefix);
    let runs = 0;
    q.register({ type: "tick", writesDb: false, handler: async () => void runs++ });
    q.start(always);
    await finished(q, await q.enqueue("tick", {}));
    await dropPrefix(redis, prefix);
    const id = await q.enqueue("tick", {});
    const job = await finished(q, id);
    expect(job.status).toBe("completed");
    expect(runs).toBe(2);
  });

  test("stats: waiting, delayed, failed and completed counts", async () => {
    const q = queue("redis");
    q.register({ type: "noop", writesDb: false, handler: async () => {} });
    await q.enqueueMany([{ type: "noop", payload: {} }, { type: "noop", payload: {} }, { type: "noop", payload: {}, delayMs: 60_000 }]);
    expect(await q.stats()).toMatchObject({ waiting: 2, delayed: 1, running_here: 0, failed: 0, completed_total: 0 });
    q.start(always);
    await waitUntil(async () => (await q.stats()).completed_total === 2);
    expect(await q.stats()).toMatchObject({ waiting: 0, delayed: 1 });
  });
});

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
