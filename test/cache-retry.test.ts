// What the two-tier cache does when Redis drops a tag bump or a bus message it owed another instance, and
// how far its per-key invalidation bookkeeping can grow. Real Redis for L2 and the bus; the failures are
// injected by thin subclasses/wrappers so each race happens in a fixed order.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Redis } from "../src/deps.ts";
import { MemoryBus, RedisBus, type BusHandlers, type BusMessage, type CacheBus } from "../src/platform/cache/bus.ts";
import { RedisL2 } from "../src/platform/cache/l2.ts";
import { TwoTierCache, type TwoTierOptions } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { REDIS_URL } from "./helpers.ts";

const logger = createLogger("silent");
let redis: Redis;
const caches: TwoTierCache[] = [];

beforeAll(async () => {
  redis = await openRedis(REDIS_URL, logger);
});
afterAll(async () => {
  for (const c of caches) await c.close();
  await closeRedis(redis);
});

const newPrefix = () => `test:cacheretry:${crypto.randomUUID().slice(0, 8)}:`;

async function makeCache(opts: { prefix: string; l2?: RedisL2; bus?: CacheBus; l1Enabled?: boolean; extra?: Partial<TwoTierOptions> }) {
  const l2 = opts.l2 ?? new RedisL2(redis, opts.prefix, 500, { threshold: 5, cooldownMs: 1000 });
  const cache = new TwoTierCache({
    instanceId: crypto.randomUUID(),
    logger,
    l1: { enabled: opts.l1Enabled ?? true, maxItems: 100, maxBytes: 1 << 24, maxEntryBytes: 1 << 20 },
    ttlSeconds: 60,
    staleGraceSeconds: 0,
    l2,
    bus: opts.bus ?? new MemoryBus(),
    ...opts.extra,
  });
  await cache.start();
  caches.push(cache);
  return cache;
}

/** Polls `check` until it holds or the deadline passes; returns its last answer (never asserts a duration). */
async function eventually(check: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  const end = performance.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > end) return false;
    await Bun.sleep(20);
  }
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
    const prefix = newPrefix();
    const gated = new GatedL2(redis, prefix, 500, { threshold: 5, cooldownMs: 1000 });
    const a = await makeCache({ prefix, l2: gated });
    const b = await makeCache({ prefix, l1Enabled: false });
    let db = "v0";

    gated.mode = "fail";
    db = "v1";
    await a.invalidateTags(["user:1"]); // write W1 while Redis is "down": pending

    gated.mode = "hold";
    await a.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] }); // a read of the tag starts the retry
    expect(await eventually(async () => gated.held === 1)).toBe(true); // the retry's bump is in Redis, its reply held

    // Another instance caches what the database holds now, under the token the retry just wrote.
    expect((await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value).toBe("v1");
    await Bun.sleep(30); // its L2 write is fire-and-forget
    expect((await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).source).toBe("hit-l2");

    gated.mode = "fail";
    db = "v2";
    await a.invalidateTags(["user:1"]); // write W2 while the retry is in flight: its bump fails too
    gated.mode = "pass";
    gated.release(); // W1's retry succeeds

    // W2's bump must still reach Redis, so B stops answering v1 from L2.
    const fresh = await eventually(async () => (await b.getOrSet("user:1:detail", async () => db, { tags: ["user:1"] })).value === "v2");
    expect(fresh).toBe(true);
  }, 15_000);
});
