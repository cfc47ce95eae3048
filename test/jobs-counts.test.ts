// Per-type counts of the job queue (waiting, delayed, running, failed), for both adapters, and the Redis
// adapter's bound on what it reads per call. Real Redis, own key prefix.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { PermanentJobError, type JobQueue } from "../src/platform/jobs/port.ts";
import { COUNT_BY_TYPE } from "../src/platform/jobs/redis-scripts.ts";
import { queueBase } from "../src/platform/jobs/redis/context.ts";
import { makeQueue, queueFileHooks } from "./fixtures/queues.ts";
import { testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { prefixes, open } = queueFileHooks<JobQueue>((r) => (redis = r));

for (const adapter of ["redis", "memory"] as const) {
  describe(`${adapter} queue`, () => {
    test("counts by type: a failed job, a running one, two waiting behind it and a delayed one", async () => {
      const prefix = testPrefix("jobs-counts");
      prefixes.push(prefix);
      const q = makeQueue(adapter, redis, prefix, { concurrency: 1 });
      open.push(q);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      q.register({ type: "boom", writesDb: false, handler: async () => { throw new PermanentJobError("no"); } });
      q.register({ type: "hold", writesDb: false, handler: () => gate });
      q.register({ type: "later", writesDb: false, handler: async () => {} });
      q.start({ canWrite: () => true });
      const boom = await q.enqueue("boom", {}, { maxRetries: 0 });
      await waitUntil(async () => (await q.getJob(boom))?.status === "failed", 10_000, "the failing job");
      const hold = await q.enqueue("hold", {});
      await waitUntil(async () => (await q.getJob(hold))?.status === "running", 10_000, "the holding job to run");
      await q.enqueueMany([{ type: "later", payload: {} }, { type: "later", payload: {} }, { type: "later", payload: {}, delayMs: 60_000 }]);

      const counts = await q.countsByType();
      expect(counts.complete).toBe(true);
      expect(counts.types).toEqual([
        { type: "boom", waiting: 0, delayed: 0, running: 0, failed: 1 },
        { type: "hold", waiting: 0, delayed: 0, running: 1, failed: 0 },
        { type: "later", waiting: 2, delayed: 1, running: 0, failed: 0 },
      ]);
      // The totals agree with the per-type counts (the totals' "waiting" includes running jobs).
      expect(await q.stats()).toMatchObject({ waiting: 3, delayed: 1, failed: 1 });

      release();
      await waitUntil(async () => (await q.countsByType()).types.every((t) => t.waiting === 0 && t.running === 0), 10_000, "the queue to drain");
      expect((await q.countsByType()).types).toContainEqual({ type: "later", waiting: 0, delayed: 1, running: 0, failed: 0 });
    }, 30_000);
  });
}

test("redis: beyond the bound, the oldest entries of each state are counted and the answer says it is incomplete", async () => {
  const prefix = testPrefix("jobs-counts-bound");
  prefixes.push(prefix);
  const q = makeQueue("redis", redis, prefix);
  open.push(q);
  await q.enqueueMany([
    ...Array.from({ length: 3 }, () => ({ type: "a", payload: {} })),
    ...Array.from({ length: 2 }, () => ({ type: "b", payload: {} })),
  ]);
  const run = async (bound: number) => (await COUNT_BY_TYPE.run(redis, [], [queueBase(prefix), bound, "db", "any"])) as (string | number)[];
  // Unknown types go to the db stream, oldest first: a, a, a, b, b.
  expect(await run(5)).toEqual([1, "a", 3, 0, 0, 0, "b", 2, 0, 0, 0]);
  expect(await run(4)).toEqual([0, "a", 3, 0, 0, 0, "b", 1, 0, 0, 0]);
});
