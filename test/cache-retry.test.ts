// What the two-tier cache does when Redis drops a tag bump or a bus message it owed another instance, and
// how far its per-key invalidation bookkeeping can grow. Real Redis for L2 and the bus; the failures are
// injected by thin subclasses/wrappers so each race happens in a fixed order.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "../src/platform/redis.ts";
import { MemoryBus, parseBusMessage, type BusHandlers, type BusMessage, type CacheBus } from "../src/platform/cache/bus.ts";
import { RedisL2 } from "../src/platform/cache/l2.ts";
import { InvalidationTracker } from "../src/platform/cache/invalidation-tracker.ts";
import type { TwoTierOptions } from "../src/platform/cache/two-tier.ts";
import { filePosition } from "../src/platform/cluster/position.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { testPrefix, TMP, TEST_TIMEOUT_MS } from "./helpers.ts";
import { cacheFile, startCache, TEST_L1, testBus, testL2 } from "./fixtures/caches.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const logger = createLogger("silent");
let redis: Redis;
const { caches } = cacheFile((r) => (redis = r));

function makeCache(opts: { prefix: string; l2?: RedisL2; bus?: CacheBus; l1Enabled?: boolean; extra?: Partial<TwoTierOptions> }) {
  return startCache(caches, {
    logger,
    l1: { ...TEST_L1, enabled: opts.l1Enabled ?? true },
    l2: opts.l2 ?? testL2(redis, opts.prefix),
    bus: opts.bus ?? new MemoryBus(),
    ...opts.extra,
  });
}

/**
 * L2 whose tag bumps can fail as if Redis were down ("fail"), or reach Redis and then keep their answer until
 * released ("hold"): a bump that Redis applied but whose reply is still on the way, like the breaker's trial.
 */
class GatedL2 extends RedisL2 {
  mode: "pass" | "fail" | "hold" = "pass";
  private waiting: (() => void)[] = [];
  override async bumpTags(tags: readonly string[], token: string, ttlMs: number): Promise<boolean> {
    if (this.mode === "fail") return false;
    if (this.mode === "pass") return super.bumpTags(tags, token, ttlMs);
    const ok = await super.bumpTags(tags, token, ttlMs);
    await new Promise<void>((r) => this.waiting.push(r));
    return ok;
  }
  get held(): number {
    return this.waiting.length;
  }
  release(): void {
    for (const r of this.waiting.splice(0)) r();
  }
}

/** A bus whose publish throws while `failing`, recording what it was asked to send. */
class FlakyBus implements CacheBus {
  failing = false;
  readonly sent: BusMessage[] = [];
  constructor(private readonly inner: CacheBus) {}
  get up(): boolean {
    return this.inner.up;
  }
  start(h: BusHandlers): Promise<void> {
    return this.inner.start(h);
  }
  async publish(msg: BusMessage): Promise<void> {
    if (this.failing) throw new Error("publish failed (injected)");
    this.sent.push(msg);
    await this.inner.publish(msg);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe("pending tag bumps", () => {
  test("an invalidation that fails while a retry is in flight is still delivered after that retry succeeds", async () => {
    const prefix = testPrefix("cacheretry");
    const gated = new GatedL2(redis, prefix, 500, { threshold: 5, cooldownMs: 1000 });
    const a = await makeCache({ prefix, l2: gated });
    const b = await makeCache({ prefix, l1Enabled: false });
    let db = "v0";

    gated.mode = "fail";
    db = "v1";
    await a.invalidateTags(["user:1"]); // write W1 while Redis is "down": pending

    gated.mode = "hold";
    await a.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] }); // a read of the tag starts the retry
    expect(await waitUntil(async () => gated.held === 1)).toBe(true); // the retry's bump is in Redis, its reply held

    // Another instance caches what the database holds now, under the token the retry just wrote.
    expect((await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value).toBe("v1");
    // Its L2 write is fire-and-forget: wait until B reads the entry back from L2.
    const fromL2 = await waitUntil(async () => {
      const r = await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] });
      return r.source === "hit-l2" && r;
    }, 5_000, "B's entry in L2");
    expect(fromL2.source).toBe("hit-l2");
    expect(fromL2.value).toBe("v1");

    gated.mode = "fail";
    db = "v2";
    await a.invalidateTags(["user:1"]); // write W2 while the retry is in flight: its bump fails too
    gated.mode = "pass";
    gated.release(); // W1's retry succeeds

    // W2's bump must still reach Redis, so B stops answering v1 from L2.
    const fresh = await waitUntil(async () => (await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value === "v2");
    expect(fresh).toBe(true);
  }, 15_000);
});

describe("bus messages that failed to publish", () => {
  async function pair(extra?: Partial<TwoTierOptions>) {
    const prefix = testPrefix("cacheretry");
    const bus = new FlakyBus(testBus(redis, prefix, logger));
    const a = await makeCache({ prefix, bus, extra });
    const b = await makeCache({ prefix, bus: testBus(redis, prefix, logger) });
    return { a, b, bus };
  }

  test("a publish that fails after a successful bump is sent again, and the other instance drops its L1 entry", async () => {
    const { a, b, bus } = await pair();
    let db = "v1";
    await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] });
    expect((await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).source).toBe("hit-l1");

    bus.failing = true;
    db = "v2";
    await a.invalidateTags(["user:1"]);
    // The bump reached Redis but the message did not: B still answers from its L1, and A says it owes it.
    expect((await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value).toBe("v1");
    expect(a.owed).toBe(true);

    bus.failing = false;
    const fresh = await waitUntil(async () => (await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value === "v2");
    expect(fresh).toBe(true);
    expect(bus.sent.some((m) => m.t?.includes("user:1"))).toBe(true);
    expect(a.owed).toBe(false);
  }, 15_000);

  test("failed messages are merged into one retry", async () => {
    const { a, bus } = await pair();
    bus.failing = true;
    await a.invalidateTags(["user:1"]);
    await a.invalidateTags(["user:2", "user:1"]);
    await a.delete(["plain:3"]);
    bus.failing = false;
    expect(await waitUntil(async () => bus.sent.length > 0)).toBe(true);
    // A message owed after that retry goes out on a later tick of the same retry timer: a second retry of the
    // first message, if one were (wrongly) made, would have gone out before it or been merged into it.
    bus.failing = true;
    await a.delete(["marker:9"]);
    bus.failing = false;
    await waitUntil(() => bus.sent.some((m) => m.k?.includes("marker:9")), 10_000, "the marker message");
    expect(bus.sent.length).toBe(2);
    expect(bus.sent[1]!.k).toEqual(["marker:9"]);
    expect(bus.sent[1]!.t).toBeUndefined();
    expect(bus.sent[1]!.r).toBeUndefined();
    expect(new Set(bus.sent[0]!.t)).toEqual(new Set(["user:1", "user:2"]));
    expect(bus.sent[0]!.k).toEqual(["plain:3"]);
  }, 15_000);

  test("beyond the bound, the retry asks every other instance to clear its whole L1", async () => {
    const { a, b, bus } = await pair({ maxUnsent: 2 });
    await b.getOrSet("other:9", async () => "x");
    expect((await b.getOrSet("other:9", async () => "y")).source).toBe("hit-l1");
    bus.failing = true;
    await a.invalidateTags(["user:1", "user:2", "user:3"]);
    bus.failing = false;
    const cleared = await waitUntil(async () => (await b.getOrSet("other:9", async () => "y")).source !== "hit-l1");
    expect(cleared).toBe(true);
    expect(bus.sent.some((m) => m.r === 1)).toBe(true);
  }, 15_000);
});

describe("the reset message", () => {
  test("is accepted only as r: 1", () => {
    expect(parseBusMessage('{"i":"a","r":1}')?.r).toBe(1);
    expect(parseBusMessage('{"i":"a","r":true}')).toBeNull();
    expect(parseBusMessage('{"i":"a","r":"1"}')).toBeNull();
  });

  test("a LiteFS replica behind a stamped reset clears L1 and fills nothing until it catches up", async () => {
    const d = mkdtempSync(join(TMP, "pos-retry-"));
    try {
      const file = join(d, "replica.db-pos");
      const pos = (txid: number) => `${txid.toString(16).padStart(16, "0")}/00000000deadbeef\n`;
      writeFileSync(file, pos(90));
      const bus = new MemoryBus();
      const replica = await startCache(caches, {
        instanceId: "replica",
        logger,
        l2: null,
        bus,
        position: filePosition(file, 0),
        isPrimary: () => false,
        catchUpWaitMs: 50,
      });
      let loads = 0;
      const loader = async () => ++loads;
      await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] });
      expect((await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] })).source).toBe("hit-l1");

      await bus.publish({ i: "primary", r: 1, x: "0000000000000064" });
      // The reset reaches the replica (after its bounded catch-up wait): its L1 entry is gone.
      const after = await waitUntil(async () => {
        const r = await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] });
        return r.source !== "hit-l1" && r;
      }, 5_000, "the reset to clear L1");
      expect(after.source).toBe("miss");
      expect((await replica.getOrSet("user:2:detail", loader, { tags: ["user:2"] })).source).toBe("miss");
      expect((await replica.getOrSet("user:3:detail", loader, { tags: ["user:3"] })).source).toBe("miss");
      expect((await replica.getOrSet("user:3:detail", loader, { tags: ["user:3"] })).source).toBe("miss");

      writeFileSync(file, pos(100));
      expect((await replica.getOrSet("user:3:detail", loader, { tags: ["user:3"] })).source).toBe("miss");
      expect((await replica.getOrSet("user:3:detail", loader, { tags: ["user:3"] })).source).toBe("hit-l1");
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("invalidations tracked for running loads", () => {
  const held = () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    return { gate, release };
  };

  test("stay bounded while one load runs long, and that load still cannot fill what was invalidated", async () => {
    const tracker = new InvalidationTracker(100);
    const cache = await makeCache({ prefix: testPrefix("cacheretry"), l1Enabled: true, extra: { l2: null, invalidations: tracker } });
    const { gate, release } = held();
    let started = false;
    const slow = cache.getOrSet("user:1:detail", async () => ((started = true), await gate, "old"), { tags: ["user:1"] });
    await waitUntil(() => started, 5_000, "the slow load to start");
    await cache.invalidateTags(["user:1"]);
    for (let i = 0; i < 1_000; i++) await cache.delete([`other:${i}`]);
    expect(tracker.size).toBeLessThanOrEqual(100);
    release();
    expect((await slow).value).toBe("old");
    const r = await cache.getOrSet("user:1:detail", async () => "new", { tags: ["user:1"] });
    expect(r.source).toBe("miss");
    expect(r.value).toBe("new");
  });

  test("entries older than every running load are pruned, so a later load still fills", async () => {
    const tracker = new InvalidationTracker(100);
    const cache = await makeCache({ prefix: testPrefix("cacheretry"), l1Enabled: true, extra: { l2: null, invalidations: tracker } });
    const started = new Set<string>();
    const a = held();
    const first = cache.getOrSet("a", async () => (started.add("a"), await a.gate, "a"));
    await waitUntil(() => started.has("a"), 5_000, "the first load to start");
    for (let i = 0; i < 60; i++) await cache.delete([`old:${i}`]);
    const b = held();
    const second = cache.getOrSet("b", async () => (started.add("b"), await b.gate, "b"));
    await waitUntil(() => started.has("b"), 5_000, "the second load to start");
    a.release();
    await first;
    for (let i = 0; i < 60; i++) await cache.delete([`new:${i}`]);
    expect(tracker.size).toBeLessThanOrEqual(100);
    b.release();
    await second;
    expect((await cache.getOrSet("b", async () => "b2")).source).toBe("hit-l1");
  });
});
