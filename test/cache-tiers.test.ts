// The two-tier cache against the real Redis: single flight, L2 format and corruption, serve-stale,
// tags across instances and the LiteFS position guard. Each cache here uses its own key prefix.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "../src/platform/redis.ts";
import { MemoryBus } from "../src/platform/cache/bus.ts";
import { decodeEntry, encodeEntry } from "../src/platform/cache/l2.ts";
import { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { filePosition, parsePosition, positionFile } from "../src/platform/cluster/position.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { testPrefix, TMP, TEST_TIMEOUT_MS } from "./helpers.ts";
import { cacheFile, startCache, TEST_L1, testBus, testL2 } from "./fixtures/caches.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const logger = createLogger("silent");
let redis: Redis;
const { caches } = cacheFile((r) => (redis = r));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function makeCache(opts: { prefix?: string; instanceId?: string; ttl?: number; grace?: number; l1Enabled?: boolean } = {}) {
  const prefix = opts.prefix ?? testPrefix("tiers");
  const l2 = testL2(redis, prefix);
  const cache = await startCache(caches, {
    instanceId: opts.instanceId ?? crypto.randomUUID(),
    logger,
    l1: { ...TEST_L1, enabled: opts.l1Enabled ?? true },
    ttlSeconds: opts.ttl ?? 60,
    staleGraceSeconds: opts.grace ?? 300,
    l2,
    bus: testBus(redis, prefix, logger),
  });
  return { cache, l2, prefix };
}

describe("two-tier cache", () => {
  test("fifty concurrent misses of one key run the loader once and all get its value", async () => {
    const { cache } = await makeCache();
    let calls = 0;
    const loader = async () => {
      calls++;
      await Bun.sleep(20);
      return { n: 42 };
    };
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet("k", loader, { tags: ["t"] })));
    expect(calls).toBe(1);
    expect(results.every((r) => r.json === '{"n":42}' && r.source === "miss")).toBe(true);
    expect((await cache.getOrSet("k", loader)).source).toBe("hit-l1");
    expect(calls).toBe(1);
  });

  test("a miss fills L2 in the versioned text format; a second instance answers from L2", async () => {
    const a = await makeCache();
    const b = await makeCache({ prefix: a.prefix });
    await a.cache.getOrSet("user:1:detail", async () => ({ name: "ann" }), { tags: ["user:1"] });
    // The L2 write after a miss is not awaited by the read.
    const raw = await waitUntil(() => a.l2.rawGet("user:1:detail"), 5_000, "the L2 entry");
    expect(raw.startsWith("v1\n")).toBe(true);
    expect(decodeEntry(raw!)?.value).toEqual({ name: "ann" });
    let loads = 0;
    const r = await b.cache.getOrSet("user:1:detail", async () => (loads++, { name: "other" }), { tags: ["user:1"] });
    expect(r.source).toBe("hit-l2");
    expect(r.value).toEqual({ name: "ann" });
    expect(loads).toBe(0);
    expect((await b.cache.getOrSet("user:1:detail", async () => ({}), { tags: ["user:1"] })).source).toBe("hit-l1");
  });

  test("a corrupt L2 entry is a miss, the loader runs, and the entry is replaced", async () => {
    const { cache, l2 } = await makeCache({ l1Enabled: false });
    for (const bad of ["garbage", "v1\nnot json\n{}", 'v1\n{"e":1}\n{}', `v1\n{"e":9999999999999,"s":9999999999999,"g":[],"t":[]}\n{trunc`]) {
      await l2.rawSet("k", bad, 60_000);
      let loads = 0;
      const r = await cache.getOrSet("k", async () => (loads++, { ok: true }));
      expect(r.source).toBe("miss");
      expect(r.value).toEqual({ ok: true });
      expect(loads).toBe(1);
      const raw = await waitUntil(async () => {
        const now = await l2.rawGet("k");
        return now !== null && decodeEntry(now) !== null && now;
      }, 5_000, "the replaced L2 entry");
      expect(decodeEntry(raw)?.value).toEqual({ ok: true });
    }
    expect(cache.stats().l2.misses).toBeGreaterThanOrEqual(4);
  });

  test("invalidateTags orphans every L2 entry of the tag, here and in another instance", async () => {
    const a = await makeCache({ l1Enabled: false });
    const b = await makeCache({ prefix: a.prefix, l1Enabled: false });
    for (const limit of [1, 5, 10]) await a.cache.getOrSet(`user:7:posts:1:${limit}`, async () => ({ limit, v: 1 }), { tags: ["user:7"] });
    // The L2 writes after the misses are not awaited by the reads.
    await waitUntil(async () => (await Promise.all([1, 5, 10].map((l) => a.l2.rawGet(`user:7:posts:1:${l}`)))).every((r) => r !== null), 5_000, "the L2 entries");
    expect((await b.cache.getOrSet("user:7:posts:1:5", async () => ({ v: 2 }), { tags: ["user:7"] })).source).toBe("hit-l2");
    await a.cache.invalidateTags(["user:7"]);
    for (const limit of [1, 5, 10]) {
      const r = await b.cache.getOrSet(`user:7:posts:1:${limit}`, async () => ({ limit, v: 2 }), { tags: ["user:7"] });
      expect(r.source).toBe("miss");
      expect(r.value).toEqual({ limit, v: 2 });
    }
  });

  test("a loader that read before an invalidation cannot put its old value back", async () => {
    const { cache, l2 } = await makeCache();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    const slow = cache.getOrSet("k", async () => {
      started = true;
      await gate;
      return "old";
    }, { tags: ["t"] });
    await waitUntil(() => started, 5_000, "the slow load to start");
    await cache.invalidateTags(["t"]);
    release();
    expect((await slow).value).toBe("old");
    // A fill of L2 would have been sent when the load returned: a later command on the same connection
    // answers only after it.
    await l2.rawGet("k");
    const r = await cache.getOrSet("k", async () => "new", { tags: ["t"] });
    expect(r.source).toBe("miss");
    expect(r.value).toBe("new");
  });

  test("when the loader fails after expiry, the value is served as stale within the grace, never after invalidation", async () => {
    const { cache } = await makeCache({ ttl: 1, grace: 60 });
    await cache.getOrSet("k", async () => "v1", { tags: ["t"] });
    const failing = async (): Promise<string> => {
      throw new Error("database is busy");
    };
    // Fresh, it is a hit; once past its TTL the failing loader runs and the stale value is served.
    const r = await waitUntil(async () => {
      const now = await cache.getOrSet("k", failing, { tags: ["t"] });
      return now.source !== "hit-l1" && now.source !== "hit-l2" && now;
    }, 5_000, "the entry to expire");
    expect(r.source).toBe("stale");
    expect(r.value).toBe("v1");
    await cache.invalidateTags(["t"]);
    await expect(cache.getOrSet("k", failing, { tags: ["t"] })).rejects.toThrow("database is busy");
  });

  test("without a stale copy, the loader's error stands", async () => {
    const { cache } = await makeCache();
    await expect(cache.getOrSet("nothing", async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  });

  test("L1 entries expire at their TTL", async () => {
    const { cache } = await makeCache({ l1Enabled: true });
    let loads = 0;
    const loader = async () => ++loads;
    await cache.getOrSet("k", loader, { ttl: 1 });
    expect((await cache.getOrSet("k", loader, { ttl: 1 })).source).toBe("hit-l1");
    const r = await waitUntil(async () => {
      const now = await cache.getOrSet("k", loader, { ttl: 1 });
      return now.source !== "hit-l1" && now;
    }, 5_000, "the entry to expire");
    expect(r.source).toBe("miss");
    expect(r.value).toBe(2);
  });

  test("get/set/delete round trip, and delete reaches the other instance's L1", async () => {
    const a = await makeCache();
    const b = await makeCache({ prefix: a.prefix });
    await a.cache.set("plain", { x: 1 }, { tags: ["p"] });
    expect(await b.cache.get("plain")).toEqual({ x: 1 });
    expect(await b.cache.get("plain")).toEqual({ x: 1 });
    await a.cache.delete(["plain"]);
    await waitUntil(async () => (await b.cache.get("plain")) === undefined, 5_000, "the delete to reach b");
    expect(await b.cache.get("plain")).toBeUndefined();
    expect(a.cache.stats().bus.published).toBeGreaterThanOrEqual(2);
    expect(b.cache.stats().bus.received).toBeGreaterThanOrEqual(1);
  });
});

describe("L2 entry format", () => {
  test("round trips, and refuses anything else", () => {
    const raw = encodeEntry('{"a":1}', 10, 20, ["user:1"], ["tok"]);
    expect(decodeEntry(raw)).toEqual({ value: { a: 1 }, json: '{"a":1}', expiresAt: 10, staleUntil: 20, tags: ["user:1"], tokens: ["tok"] });
    expect(decodeEntry("v2\n" + raw.slice(3))).toBeNull();
    expect(decodeEntry(raw.replace('"g":["user:1"]', '"g":[]'))).toBeNull();
    expect(decodeEntry(raw.slice(0, -1))).toBeNull();
  });
});

describe("LiteFS position", () => {
  const posDir = () => {
    const d = mkdtempSync(join(TMP, "pos-"));
    dirs.push(d);
    return d;
  };
  const pos = (txid: number) => `${txid.toString(16).padStart(16, "0")}/00000000deadbeef\n`;

  test("parses the pos file and finds it next to the database in the mount", () => {
    expect(parsePosition("00000000002df417/ce552e44f23fbbdd\n")).toEqual({ txid: "00000000002df417", checksum: "ce552e44f23fbbdd" });
    expect(parsePosition("2df417/ce55")).toBeNull();
    expect(positionFile("file:/litefs/app.db", "/litefs")).toBe("/litefs/app.db-pos");
    expect(positionFile("file:/data/app.db", "/litefs")).toBe("/litefs/app.db-pos");
    expect(positionFile("file:/litefs/app.db", undefined)).toBeNull();
    const d = posDir();
    const file = join(d, "app.db-pos");
    const reader = filePosition(file, 0);
    expect(reader.read()).toBeNull();
    writeFileSync(file, pos(0x2a));
    expect(reader.read()?.txid).toBe("000000000000002a");
    expect(reader.atLeast("0000000000000029")).toBe(true);
    expect(reader.atLeast("000000000000002b")).toBe(false);
  });

  test("a replica behind the primary's stamped invalidation does not fill until it catches up", async () => {
    const d = posDir();
    const primaryPos = join(d, "primary.db-pos");
    const replicaPos = join(d, "replica.db-pos");
    writeFileSync(primaryPos, pos(100));
    writeFileSync(replicaPos, pos(90));
    const bus = new MemoryBus();
    const mk = (id: string, file: string, primary: boolean) => {
      const c = new TwoTierCache({
        instanceId: id,
        logger,
        l1: TEST_L1,
        ttlSeconds: 60,
        staleGraceSeconds: 0,
        l2: null,
        bus,
        position: filePosition(file, 0),
        isPrimary: () => primary,
        catchUpWaitMs: 50,
      });
      caches.push(c);
      return c;
    };
    const primary = mk("primary", primaryPos, true);
    const replica = mk("replica", replicaPos, false);
    await primary.start();
    await replica.start();
    let loads = 0;
    const loader = async () => ++loads;
    await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] });
    expect((await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] })).source).toBe("hit-l1");

    await primary.invalidateTags(["user:1"]);
    // The invalidation reaches the replica (after its bounded catch-up wait): its L1 entry is gone.
    const after = await waitUntil(async () => {
      const r = await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] });
      return r.source !== "hit-l1" && r;
    }, 5_000, "the invalidation to reach the replica");
    // Still behind: every read goes to the (lagging) database and nothing is cached.
    expect(after.source).toBe("miss");
    expect((await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] })).source).toBe("miss");
    expect((await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] })).source).toBe("miss");
    // Other users are unaffected.
    await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] });
    expect((await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] })).source).toBe("hit-l1");

    writeFileSync(replicaPos, pos(100));
    expect((await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] })).source).toBe("miss");
    expect((await replica.getOrSet("user:1:detail", loader, { tags: ["user:1"] })).source).toBe("hit-l1");
  });
});
