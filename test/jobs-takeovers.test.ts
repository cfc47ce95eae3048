// The Redis queue's holds on running jobs: extended by a long handler, lost (and the handler aborted) to a
// takeover, taken over from a silent worker, handed back at shutdown; and its recovery when Redis loses the
// queue's keys, and its stats. Real Redis, own key prefix.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { GROUP, type RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { always, finished, passedBy, queueFile, queueKey } from "./fixtures/queues.ts";
import { dropPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { newPrefix, queue } = queueFile("jobs", (r) => (redis = r));

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
