// How long the queue keeps finished jobs (records, idempotency keys, the failed set, the outbox's finished
// markers), for both adapters. Real Redis, own key prefix.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import type { RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { always, finished, okAndKo, queueFile, queueKey } from "./fixtures/queues.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { newPrefix, queue } = queueFile("jobs", (r) => (redis = r));

describe("retention", () => {
  test("redis: finished records (and their idempotency keys) expire after their retention; the failed set is trimmed", async () => {
    const prefix = newPrefix();
    const q = queue("redis", { retentionCompletedMs: 5_000, retentionFailedMs: 9_000 }, prefix) as RedisQueue;
    okAndKo(q);
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
      okAndKo(q, () => void runs++);
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
