// Micro benchmark of one cache read, serial: our L1 hit and L2 hit against bentocache configured as
// L1 (memory) + L2 (Redis) + bus (Redis pub/sub), in the same run, same value (a ~2.5 KB user detail),
// same Redis. bentocache's memory driver gets `serialize: false` (objects kept as they are), its fastest L1.
//
//   bun run bench -- cache-micro
import { BentoCache, bentostore } from "bentocache";
import { memoryDriver } from "bentocache/drivers/memory";
import { redisBusDriver, redisDriver } from "bentocache/drivers/redis";
import { MemoryBus, RedisBus } from "../src/platform/cache/bus.ts";
import { RedisL2 } from "../src/platform/cache/l2.ts";
import { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { table, writeResult } from "./lib.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const { hostname, port } = new URL(REDIS_URL);
const PREFIX = `bench:micro:${process.pid}:`;
const L1_OPS = Number(process.env.BENCH_L1_OPS ?? 300_000);
const L2_OPS = Number(process.env.BENCH_L2_OPS ?? 5_000);
const ROUNDS = 3;

const value = {
  user: { id: 1, email: "bench@example.com", full_name: "Bench User", is_active: true, is_admin: false, created_at: "2026-01-01T00:00:00.000Z", updated_at: "2026-01-01T00:00:00.000Z" },
  posts: Array.from({ length: 10 }, (_, i) => ({ id: i + 1, user_id: 1, title: `Post ${i}`, content: "lorem ipsum dolor sit amet ".repeat(7), created_at: "2026-01-01T00:00:00.000Z" })),
  preferences: { theme: "dark", lang: "en" },
};
const KEY = "user:1:detail";
const TAGS = ["user:1"];
const loader = async () => value;

async function timeSerial(ops: number, fn: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < ops; i++) await fn();
    samples.push((Bun.nanoseconds() - t0) / ops);
  }
  samples.sort((a, b) => a - b);
  return samples[1]!;
}

const logger = createLogger("silent");
const redis = await openRedis(REDIS_URL, logger);
const l1 = { enabled: true, maxItems: 10_000, maxBytes: 64 * 1024 * 1024, maxEntryBytes: 1024 * 1024 };
const mk = (l1Enabled: boolean) =>
  new TwoTierCache({
    instanceId: `micro-${l1Enabled}`,
    logger,
    l1: { ...l1, enabled: l1Enabled },
    ttlSeconds: 600,
    staleGraceSeconds: 60,
    l2: new RedisL2(redis, PREFIX, 1_000, { threshold: 5, cooldownMs: 1_000 }),
    bus: l1Enabled ? new RedisBus(redis, `${PREFIX}cache:bus`, logger, 1_000) : new MemoryBus(),
  });
const ours = mk(true);
const oursL2 = mk(false);
await ours.start();
await oursL2.start();

const connection = { host: hostname, port: Number(port || 6379), keyPrefix: PREFIX };
const bento = new BentoCache({
  default: "tiered",
  stores: {
    tiered: bentostore()
      .useL1Layer(memoryDriver({ maxItems: 10_000, serialize: false }))
      .useL2Layer(redisDriver({ connection }))
      .useBus(redisBusDriver({ connection })),
    l2only: bentostore().useL2Layer(redisDriver({ connection })),
  },
});
const bentoL1 = bento.use("tiered");
const bentoL2 = bento.use("l2only");

// Fill, then check every path answers the value from where we claim.
const first = await ours.getOrSet(KEY, loader, { tags: TAGS });
if (first.source !== "miss") throw new Error("expected a first miss");
await Bun.sleep(50);
if ((await ours.getOrSet(KEY, loader, { tags: TAGS })).source !== "hit-l1") throw new Error("expected hit-l1");
if ((await oursL2.getOrSet(KEY, loader, { tags: TAGS })).source !== "hit-l2") throw new Error("expected hit-l2");
let bentoCalls = 0;
const bentoFactory = async () => (bentoCalls++, value);
await bentoL1.getOrSet({ key: KEY, factory: bentoFactory, ttl: "10m", tags: TAGS });
await bentoL2.getOrSet({ key: KEY, factory: bentoFactory, ttl: "10m", tags: TAGS });
const callsAfterFill = bentoCalls;

const rows = [];
const oursL1Ns = await timeSerial(L1_OPS, () => ours.getOrSet(KEY, loader, { tags: TAGS }));
const bentoL1Ns = await timeSerial(L1_OPS, () => bentoL1.getOrSet({ key: KEY, factory: bentoFactory, ttl: "10m", tags: TAGS }));
const oursL2Ns = await timeSerial(L2_OPS, () => oursL2.getOrSet(KEY, loader, { tags: TAGS }));
const bentoL2Ns = await timeSerial(L2_OPS, () => bentoL2.getOrSet({ key: KEY, factory: bentoFactory, ttl: "10m", tags: TAGS }));
// The floor for any L2 hit: one bare node-redis MGET of the same keys on the same client.
const rawKeys = [`${PREFIX}cache:e:${KEY}`, `${PREFIX}cache:t:${TAGS[0]}`];
const rawNs = await timeSerial(L2_OPS, () => redis.mGet(rawKeys));
if (bentoCalls !== callsAfterFill) throw new Error("bentocache ran its factory during the timed loops: not all hits");
if (ours.stats().l1.hits < L1_OPS * ROUNDS) throw new Error("our L1 loop was not all hits");

rows.push(
  { path: "L1 hit", "ours ns/op": Math.round(oursL1Ns), "bentocache ns/op": Math.round(bentoL1Ns), "bentocache / ours": Math.round((bentoL1Ns / oursL1Ns) * 100) / 100, target: ">= 2" },
  { path: "L2 hit (Redis)", "ours ns/op": Math.round(oursL2Ns), "bentocache ns/op": Math.round(bentoL2Ns), "bentocache / ours": Math.round((bentoL2Ns / oursL2Ns) * 100) / 100, target: ">= 1" },
  { path: "floor: bare node-redis MGET", "ours ns/op": Math.round(rawNs), "bentocache ns/op": "", "bentocache / ours": "", target: "" },
);
table(rows);
writeResult("cache-micro", { l1_ops: L1_OPS, l2_ops: L2_OPS, rounds: ROUNDS, value_bytes: JSON.stringify(value).length, rows, note: "median of 3 rounds, serial awaits" });

await bento.disconnectAll();
await ours.close();
await oursL2.close();
const keys = await redis.keys(`${PREFIX}*`);
if (keys.length) await redis.del(keys);
await closeRedis(redis);
process.exit(0);
