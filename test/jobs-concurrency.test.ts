// JOB_CONCURRENCY holds while the fetch loop's blocking read and the takeover scan (reclaim) race for the
// same free slot: each reserves its slots before calling Redis, and what a blocking read brings beyond the
// slots still free is handed back (not counted as a retry). And the clean-up of dead workers' consumers
// never removes one that holds entries. Real Redis, own key prefix.
import { expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { GROUP, RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { queueBase } from "../src/platform/jobs/redis/context.ts";
import { removeIdleConsumer } from "../src/platform/jobs/redis/maintenance.ts";
import { queueKey, queueOptions, queueFileHooks } from "./fixtures/queues.ts";
import { testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { prefixes, open } = queueFileHooks<RedisQueue>((r) => (redis = r));

test("a takeover during a blocking read does not push the handlers past JOB_CONCURRENCY; the extra job is handed back", async () => {
  const prefix = testPrefix("jobs-conc");
  prefixes.push(prefix);
  const opts = { concurrency: 1, visibilityTimeoutMs: 300, retentionCompletedMs: 60_000 };
  let running = 0;
  let max = 0;
  const def = {
    type: "slow",
    writesDb: false,
    handler: async () => {
      max = Math.max(max, ++running);
      await Bun.sleep(600);
      running--;
    },
  };
  // A worker that took a job and died: its entry stays pending for it until the visibility timeout.
  const dead = new RedisQueue(redis, prefix, queueOptions({ ...opts, consumerName: "dead" }));
  dead.register(def);
  const orphan = await dead.enqueue("slow", {});
  const stream = queueKey(prefix, "stream:any");
  await redis.sendCommand(["XGROUP", "CREATE", queueKey(prefix, "stream:db"), GROUP, "0", "MKSTREAM"]).catch(() => undefined);
  await redis.sendCommand(["XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM"]).catch(() => undefined);
  await redis.sendCommand(["XREADGROUP", "GROUP", GROUP, "dead", "COUNT", "10", "STREAMS", stream, ">"]);
  await waitUntil(async () => {
    const p = (await redis.sendCommand(["XPENDING", stream, GROUP, "-", "+", "1"])) as [string, string, number][];
    return p.length === 1 && Number(p[0]![2]) > 300;
  }, 5_000, "the dead worker's entry to be idle past the visibility timeout");

  const q = new RedisQueue(redis, prefix, queueOptions({ ...opts, consumerName: "live" }));
  open.push(q);
  q.register(def);
  q.start({ canWrite: () => true });
  // The empty streams leave the fetch loop in its blocking read; the takeover scan (every 150 ms) takes the
  // orphan meanwhile; then a new job reaches the blocked read.
  await waitUntil(async () => (await q.getJob(orphan))?.status === "running", 5_000, "the orphan to be taken over");
  const fresh = await q.enqueue("slow", {});
  for (const id of [orphan, fresh]) {
    await waitUntil(async () => (await q.getJob(id))?.status === "completed", 15_000, `job ${id} to complete`);
  }
  expect(max).toBe(1);
  // The job handed back was not charged a retry.
  expect((await q.getJob(fresh))?.retry_count).toBe(0);
}, 30_000);

test("a consumer is removed from the group only when, checked in the same step, nothing is pending for it and it is idle", async () => {
  const prefix = testPrefix("jobs-conc");
  prefixes.push(prefix);
  const stream = queueKey(prefix, "stream:any");
  await redis.sendCommand(["XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM"]);
  await redis.sendCommand(["XADD", stream, "*", "j", "x"]);
  // "holder" holds an entry (it would be discarded with the consumer); "gone" and "fresh" hold nothing.
  await redis.sendCommand(["XREADGROUP", "GROUP", GROUP, "holder", "COUNT", "1", "STREAMS", stream, ">"]);
  await redis.sendCommand(["XGROUP", "CREATECONSUMER", stream, GROUP, "gone"]);
  const idle = async (name: string) => {
    for (const c of (await redis.sendCommand(["XINFO", "CONSUMERS", stream, GROUP])) as unknown[]) {
      const get = (k: string) => (c instanceof Map ? c.get(k) : Array.isArray(c) ? c[c.indexOf(k) + 1] : (c as Record<string, unknown>)[k]);
      if (String(get("name")) === name) return Number(get("idle"));
    }
    return -1;
  };
  await waitUntil(async () => (await idle("gone")) > 60 && (await idle("holder")) > 60, 5_000, "holder and gone idle past 60 ms");
  await redis.sendCommand(["XGROUP", "CREATECONSUMER", stream, GROUP, "fresh"]);
  const consumers = async () =>
    ((await redis.sendCommand(["XINFO", "CONSUMERS", stream, GROUP])) as unknown[])
      // RESP3: a map (or object) per consumer; RESP2: a flat list of name, value pairs.
      .map((c) => String(c instanceof Map ? c.get("name") : Array.isArray(c) ? c[1] : (c as { name: unknown }).name))
      .sort();

  expect(await removeIdleConsumer(redis, queueBase(prefix), "any", "holder", 50)).toBe(false);
  expect(await removeIdleConsumer(redis, queueBase(prefix), "any", "fresh", 60_000)).toBe(false);
  expect(await removeIdleConsumer(redis, queueBase(prefix), "any", "gone", 50)).toBe(true);
  expect(await removeIdleConsumer(redis, queueBase(prefix), "any", "nobody", 50)).toBe(false);
  expect(await consumers()).toEqual(["fresh", "holder"]);
  const pending = (await redis.sendCommand(["XPENDING", stream, GROUP, "-", "+", "10", "holder"])) as unknown[];
  expect(pending).toHaveLength(1);
});
