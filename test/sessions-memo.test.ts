// The session memo (sessions.ts) is the bound for when the bus cannot carry a revocation, and only then: while
// the cache's L1 is live every check goes to the cache, where the bus's invalidations land. And a revocation
// cannot be undone in L2 by another instance's load that read the session just before it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { MemoryBus } from "../src/platform/cache/bus.ts";
import type { Cache, CacheResult } from "../src/platform/cache/port.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import type { Redis } from "../src/platform/redis.ts";
import type { Database } from "../src/platform/db/client.ts";
import { Sessions, type SessionState } from "../src/platform/http/sessions.ts";
import { TEST_TIMEOUT_MS, testPrefix } from "./helpers.ts";
import type { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { cacheFile, startCache, TEST_L1, testBus, testL2 } from "./fixtures/caches.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

/** A cache that answers from a map another instance's revocation would change, and counts the reads. */
function fakeCache(l1Live: boolean) {
  const values = new Map<string, SessionState | null>();
  let reads = 0;
  const hit = (key: string): CacheResult<unknown> => {
    const value = values.get(key) ?? null;
    return { value, json: JSON.stringify(value), source: l1Live ? "hit-l1" : "hit-l2" };
  };
  const cache = {
    l1Live,
    async getOrSet<T>(key: string) {
      reads++;
      return hit(key) as CacheResult<T>;
    },
    peek: (key: string) => (l1Live && values.has(key) ? hit(key) : undefined),
  } as unknown as Cache;
  return { cache, values, reads: () => reads };
}

describe("the session memo", () => {
  test("while L1 is live, a state changed in the cache is seen by the next check and the next peek", async () => {
    const f = fakeCache(true);
    const sessions = new Sessions(undefined as unknown as Database, f.cache);
    f.values.set("session:s", { userId: 1, isAdmin: false });
    expect(await sessions.state("s", 1)).toEqual({ userId: 1, isAdmin: false });
    expect(sessions.peek("s")).toEqual({ userId: 1, isAdmin: false });
    f.values.set("session:s", null); // what the bus does to L1 when another instance revokes
    expect(sessions.peek("s")).toBeNull();
    expect(await sessions.state("s", 1)).toBeNull();
    expect(f.reads()).toBe(2);
  });

  test("while L1 is live, a session known revoked is refused from memory: peek reports the cached null", async () => {
    const caches: TwoTierCache[] = [];
    const cache = await startCache(caches, { l2: null, bus: new MemoryBus() });
    try {
      const sessions = new Sessions(undefined as unknown as Database, cache);
      expect(cache.l1Live).toBe(true);
      expect(sessions.peek("gone")).toBeUndefined(); // not in memory: the caller loads it
      await cache.set("session:gone", null, { tags: ["sessions:1"] });
      expect(sessions.peek("gone")).toBeNull();
      await cache.set("session:live", { userId: 1, isAdmin: false }, { tags: ["sessions:1"] });
      expect(sessions.peek("live")).toEqual({ userId: 1, isAdmin: false });
    } finally {
      for (const c of caches) await c.close();
    }
  });

  test("while L1 is not live, a state is remembered for a bounded time, then read again", async () => {
    const f = fakeCache(false);
    const sessions = new Sessions(undefined as unknown as Database, f.cache);
    f.values.set("session:s", { userId: 1, isAdmin: false });
    expect(await sessions.state("s", 1)).toEqual({ userId: 1, isAdmin: false });
    f.values.set("session:s", null);
    // Remembered: no read per request when nothing can keep an L1 coherent.
    expect(await sessions.state("s", 1)).toEqual({ userId: 1, isAdmin: false });
    expect(sessions.peek("s")).toEqual({ userId: 1, isAdmin: false });
    expect(f.reads()).toBe(1);
    const started = performance.now();
    while ((await sessions.state("s", 1)) !== null && performance.now() - started < 5_000) await Bun.sleep(50);
    expect(await sessions.state("s", 1)).toBeNull();
    expect(sessions.peek("s")).toBeNull();
  });
});

describe("a revocation and a load on another instance that read the session just before it", () => {
  const logger = createLogger("silent");
  let redis: Redis;
  const { caches } = cacheFile((r) => (redis = r));
  const makeCache = (prefix: string, bus: "redis" | "deaf") =>
    startCache(caches, {
      logger,
      l1: { ...TEST_L1, maxBytes: 1 << 20, maxEntryBytes: 1 << 16 },
      l2: testL2(redis, prefix),
      // "deaf": a bus of its own, so the revocation's message reaches this instance only after its load is done.
      bus: bus === "redis" ? testBus(redis, prefix, logger) : new MemoryBus(),
    });

  test("the load's late L2 write does not bring the session back for the other instances", async () => {
    const prefix = testPrefix("sessions");
    const a = await makeCache(prefix, "redis");
    const b = await makeCache(prefix, "deaf");
    const revoking = new Sessions({ write: async () => undefined } as unknown as Database, a);
    const live: SessionState = { userId: 1, isAdmin: false };
    // b reads the row while it still exists, and writes its entry after a revoked the session.
    let release!: () => void;
    const read = new Promise<void>((r) => (release = r));
    const loading = b.getOrSet("session:s", async () => (await read, live), { tags: ["sessions:1"] });
    await Bun.sleep(50);
    await revoking.revoke("s", 1);
    release();
    expect((await loading).value).toEqual(live);
    await Bun.sleep(100); // the L2 write is not awaited by the load
    const c = await makeCache(prefix, "redis");
    const r = await c.getOrSet<SessionState | null>("session:s", async () => null, { tags: ["sessions:1"] });
    expect([r.value, r.source]).toEqual([null, "miss"]);
  });
});
