// With Redis, an invalidation's new tag tokens and its bus message go to Redis in one call; a failure of that
// call leaves both owed and both are delivered once Redis answers; a Redis that lost its scripts still takes it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import type { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";
import { cacheFile, failingCache } from "./fixtures/caches.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const logger = createLogger("silent");
let redis: Redis;
const { caches, prefixes } = cacheFile((r) => (redis = r));

/** The client as the caches see it, recording the name of every command called on it while `recording`. */
function recorded(client: Redis) {
  const calls: string[] = [];
  let recording = false;
  const proxy = new Proxy(client, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t);
      if (typeof v !== "function") return v;
      return (...a: unknown[]) => {
        if (recording && typeof prop === "string") calls.push(prop);
        return (v as unknown as (...x: unknown[]) => unknown).apply(t, a);
      };
    },
  }) as Redis;
  return {
    proxy,
    calls,
    record(on: boolean) {
      recording = on;
      if (on) calls.length = 0;
    },
  };
}

function makeCache(client: Redis, prefix: string, opts: { l1Enabled?: boolean } = {}) {
  return failingCache(caches, client, prefix, logger, { enabled: opts.l1Enabled ?? true });
}

describe("an invalidation with Redis", () => {
  test("is one call carrying the new tokens and the bus message; the other instance drops its L1 entry", async () => {
    const prefix = testPrefix("onetrip");
    prefixes.push(prefix);
    const rec = recorded(redis);
    const a = await makeCache(rec.proxy, prefix);
    const b = await makeCache(rec.proxy, prefix);
    const l2Only = await makeCache(rec.proxy, prefix, { l1Enabled: false });
    let db = "v1";
    const read = (c: TwoTierCache) => c.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] });
    await a.cache.invalidateTags(["user:9"]); // loads the script if this Redis does not have it yet
    await read(b.cache);
    await waitUntil(async () => (await read(l2Only.cache)).source === "hit-l2", 5_000, "the entry in L2");
    expect((await read(b.cache)).source).toBe("hit-l1");

    db = "v2";
    const published = a.cache.stats().bus.published;
    rec.record(true);
    await a.cache.invalidateTags(["user:1"]);
    rec.record(false);
    // (A fill's fire-and-forget L2 write may be in flight meanwhile: only the invalidation's kinds of call count.)
    expect(rec.calls.filter((c) => ["evalSha", "eval", "publish", "multi", "MULTI"].includes(c))).toEqual(["evalSha"]);
    expect(a.cache.stats().bus.published).toBe(published + 1);
    expect(a.cache.owed).toBe(false);
    // The message reached B, and the token changed in Redis: neither tier answers v1.
    expect(await waitUntil(async () => (await read(b.cache)).value === "v2", 5_000, "B's fresh read")).toBe(true);
    expect((await read(l2Only.cache)).value).toBe("v2");
  });

  test("that fails leaves the tokens and the message owed, and both are delivered once Redis answers", async () => {
    const prefix = testPrefix("onetrip");
    prefixes.push(prefix);
    const a = await makeCache(redis, prefix);
    const b = await makeCache(redis, prefix);
    const l2Only = await makeCache(redis, prefix, { l1Enabled: false });
    let db = "v1";
    const read = (c: TwoTierCache) => c.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] });
    await read(b.cache);
    await waitUntil(async () => (await read(l2Only.cache)).source === "hit-l2", 5_000, "the entry in L2");
    expect((await read(b.cache)).source).toBe("hit-l1");

    a.l2.failing = true;
    a.bus.failing = true;
    db = "v2";
    await a.cache.invalidateTags(["user:1"]);
    expect(a.cache.owed).toBe(true);
    // Nothing reached Redis: B's L1 and the L2 entry (old token) still answer v1.
    expect((await read(b.cache)).value).toBe("v1");
    expect((await read(l2Only.cache)).value).toBe("v1");

    a.l2.failing = false;
    a.bus.failing = false;
    expect(await waitUntil(async () => !a.cache.owed, 5_000, "A owing nothing")).toBe(true);
    expect(await waitUntil(async () => (await read(b.cache)).value === "v2", 5_000, "B's fresh read")).toBe(true);
    expect((await read(l2Only.cache)).value).toBe("v2");
  });

  test("reaches a Redis that has lost its scripts (restarted, or SCRIPT FLUSH)", async () => {
    let own: PrivateRedis | undefined;
    let client: Redis | undefined;
    try {
      own = await startPrivateRedis();
      client = await openRedis(own.url, logger);
      const prefix = testPrefix("onetrip");
      const a = await makeCache(client, prefix);
      const b = await makeCache(client, prefix);
      for (const round of [1, 2]) {
        if (round === 2) await client.scriptFlush();
        let db = `v${round}`;
        const read = () => b.cache.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] });
        await read();
        expect((await read()).source).toBe("hit-l1");
        db = `w${round}`;
        await a.cache.invalidateTags(["user:1"]);
        expect(a.cache.owed).toBe(false);
        expect(await waitUntil(async () => (await read()).value === `w${round}`, 5_000, "B's fresh read")).toBe(true);
      }
    } finally {
      for (const c of caches.splice(0)) await c.close();
      await closeRedis(client ?? null);
      await own?.stop();
    }
  });
});
