// With Redis, invalidations made while one is on its way to Redis go together in the next call; each caller
// still returns only once its own tags' tokens are in Redis, a failed call leaves every one of them owed, a
// call that hangs holds the others back only for a while, and the tokens of one tag reach Redis in the order
// the invalidations were made.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { MAX_BATCH_TAGS } from "../src/platform/cache/invalidation-batch.ts";
import type { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { REDIS_URL, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { cacheFile, failingCache } from "./fixtures/caches.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const logger = createLogger("silent");
let redis: Redis;
const { caches, prefixes } = cacheFile((r) => (redis = r));
/** Another connection: a read on the caches' own would queue behind their calls and prove nothing. */
let other: Redis;
beforeAll(async () => {
  other = await openRedis(REDIS_URL, logger);
});
afterAll(async () => {
  await closeRedis(other);
});

/** The client as the caches see it, recording the keys and arguments of every script call (evalSha/eval). */
function recorded(client: Redis) {
  const scripts: { keys: string[]; args: string[] }[] = [];
  const proxy = new Proxy(client, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t);
      if (typeof v !== "function") return v;
      return (...a: unknown[]) => {
        if (prop === "evalSha" || prop === "eval") {
          const o = a[1] as { keys: string[]; arguments: string[] };
          scripts.push({ keys: o.keys, args: o.arguments });
        }
        return (v as unknown as (...x: unknown[]) => unknown).apply(t, a);
      };
    },
  }) as Redis;
  return { proxy, scripts };
}

function makeCache(client: Redis, prefix: string, opts: { l1Enabled?: boolean } = {}) {
  return failingCache(caches, client, prefix, logger, { enabled: opts.l1Enabled ?? true, maxItems: 10_000 });
}

/** Three instances on one Redis: A writes, B has an L1, C reads through L2 alone; users 1..n cached in B and L2. */
async function cluster(n: number, client: Redis = redis) {
  const prefix = testPrefix("batch");
  prefixes.push(prefix);
  const [a, b, c] = [await makeCache(client, prefix), await makeCache(client, prefix), await makeCache(client, prefix, { l1Enabled: false })];
  const db = new Map<number, string>();
  const read = (x: TwoTierCache, id: number) => x.getOrSet(`user:${id}:detail`, async () => db.get(id) ?? "v1", { tags: [`user:${id}`] });
  await a.cache.invalidateTags(["user:0"]); // loads the script if this Redis does not have it yet
  for (let id = 1; id <= n; id++) {
    await read(b.cache, id);
    await waitUntil(async () => (await read(c.cache, id)).source === "hit-l2", 5_000, `user ${id} in L2`);
    expect((await read(b.cache, id)).source).toBe("hit-l1");
  }
  /** Every user reads `want` in B (its L1 dropped by the bus) and in C (the L2 entry orphaned by the token). */
  const allRead = async (want: string) => {
    for (let id = 1; id <= n; id++) {
      expect(await waitUntil(async () => (await read(b.cache, id)).value === want, 5_000, `B reading user ${id}`)).toBe(true);
      expect((await read(c.cache, id)).value).toBe(want);
    }
  };
  return { prefix, a, b, c, db, read, allRead };
}

describe("concurrent invalidations with Redis", () => {
  test("go in fewer calls than there are invalidations; another instance and the L2 see every one", async () => {
    const rec = recorded(redis);
    const n = 20;
    const { a, db, allRead } = await cluster(n, rec.proxy);
    for (let id = 1; id <= n; id++) db.set(id, "v2");
    const before = rec.scripts.length;
    const published = a.cache.stats().bus.published;
    // Twenty writes finishing together, one of them twice.
    const ids = [...Array.from({ length: n }, (_, i) => i + 1), 1];
    await Promise.all(ids.map((id) => a.cache.invalidateTags([`user:${id}`])));
    const calls = rec.scripts.slice(before);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.length).toBeLessThan(ids.length);
    // One token per tag per call, every tag in some call, one bus message per call.
    for (const c of calls) expect(new Set(c.keys).size).toBe(c.keys.length);
    expect(new Set(calls.flatMap((c) => c.keys)).size).toBe(n);
    expect(a.cache.stats().bus.published).toBe(published + calls.length);
    expect(a.cache.owed).toBe(false);
    await allRead("v2");
  });

  test("one at a time, each is its own call", async () => {
    const rec = recorded(redis);
    const { a, db, allRead } = await cluster(3, rec.proxy);
    const before = rec.scripts.length;
    for (const id of [1, 2, 3]) {
      db.set(id, "v2");
      await a.cache.invalidateTags([`user:${id}`]);
    }
    expect(rec.scripts.slice(before).map((c) => c.keys.length)).toEqual([1, 1, 1]);
    await allRead("v2");
  });

  test("a failed call leaves every invalidation it carried owed, and all of them land once Redis answers", async () => {
    const n = 10;
    const { a, b, c, db, read, allRead } = await cluster(n);
    a.l2.failing = true;
    a.bus.failing = true;
    const calls = a.l2.calls;
    for (let id = 1; id <= n; id++) db.set(id, "v2");
    await Promise.all(Array.from({ length: n }, (_, i) => a.cache.invalidateTags([`user:${i + 1}`])));
    expect(a.l2.calls - calls).toBeLessThan(n);
    expect(a.cache.owed).toBe(true);
    // Nothing reached Redis: B's L1 and the L2 entries (old tokens) still answer v1.
    for (let id = 1; id <= n; id++) {
      expect((await read(b.cache, id)).value).toBe("v1");
      expect((await read(c.cache, id)).value).toBe("v1");
    }
    a.l2.failing = false;
    a.bus.failing = false;
    expect(await waitUntil(async () => !a.cache.owed, 5_000, "A owing nothing")).toBe(true);
    await allRead("v2");
  });

  test("do not wait for ever behind a call that does not return: after a while they go on their own", async () => {
    const { a, db, allRead } = await cluster(2);
    let release!: (r: "failed") => void;
    a.l2.hold = new Promise((r) => (release = r));
    db.set(1, "v2");
    db.set(2, "v2");
    let firstDone = false;
    const first = a.cache.invalidateTags(["user:1"]).then(() => (firstDone = true));
    a.l2.hold = null;
    let secondDone = false;
    void a.cache.invalidateTags(["user:2"]).then(() => (secondDone = true));
    expect(await waitUntil(() => secondDone, 5_000, "the second invalidation")).toBe(true);
    expect(firstDone).toBe(false);
    // The first call times out: its tags are owed, and delivered by the retry.
    release("failed");
    await first;
    expect(await waitUntil(async () => !a.cache.owed, 5_000, "A owing nothing")).toBe(true);
    await allRead("v2");
  });

  test("keep the order of one tag's invalidations, and each returns only once its token is in Redis", async () => {
    const rec = recorded(redis);
    const { prefix, a } = await cluster(0, rec.proxy);
    const tagKey = `${prefix}cache:t:user:1`;
    /** Tokens sent for user:1, in the order the calls were sent. */
    const sent = () => rec.scripts.filter((s) => s.keys.includes(tagKey)).map((s) => s.args[0]!);
    const seen: { before: number; after: string | null }[] = [];
    const writer = async (w: number) => {
      for (let i = 0; i < 15; i++) {
        await Bun.sleep((w + i) % 3 === 0 ? 0 : 1);
        const before = sent().length;
        await a.cache.invalidateTags(i % 2 === 0 ? ["user:1"] : ["user:1", `user:${w + 2}`]);
        seen.push({ before, after: (await other.get(tagKey)) as string | null });
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    const tokens = sent();
    expect(tokens.length).toBeLessThan(8 * 15);
    // A call carrying this invalidation (or a later one) had landed when it returned.
    for (const s of seen) expect(tokens.indexOf(s.after!)).toBeGreaterThanOrEqual(s.before);
    // Tokens were made in call order and Redis holds the last one.
    const seq = (t: string) => parseInt(t.slice(t.indexOf(".") + 9), 36);
    for (let i = 1; i < tokens.length; i++) expect(seq(tokens[i]!)).toBeGreaterThan(seq(tokens[i - 1]!));
    expect(await redis.get(tagKey)).toBe(tokens.at(-1)!);
  });

  test("carry at most MAX_BATCH_TAGS tags per call, and every tag lands", async () => {
    const rec = recorded(redis);
    const { prefix, a } = await cluster(0, rec.proxy);
    const before = rec.scripts.length;
    const n = MAX_BATCH_TAGS + MAX_BATCH_TAGS / 2 + 1;
    await Promise.all(Array.from({ length: n }, (_, i) => a.cache.invalidateTags([`user:${i + 1}`])));
    const calls = rec.scripts.slice(before);
    expect(calls.length).toBeGreaterThan(1);
    for (const c of calls) expect(c.keys.length).toBeLessThanOrEqual(MAX_BATCH_TAGS);
    const tokens = (await redis.mGet(Array.from({ length: n }, (_, i) => `${prefix}cache:t:user:${i + 1}`))) as (string | null)[];
    expect(tokens.filter((t) => t === null)).toEqual([]);
  });
});
