// What one write's cache invalidation costs with Redis: the new tag token and the bus message in one call
// (the Lua script, two-tier.ts) against the two calls in a row it replaced (MULTI/SET/EXEC, then PUBLISH: what
// the same cache does with a bus that cannot carry the message). Same process, same Redis, rounds alternated;
// CPU from process.cpuUsage (the process's own subscriber receiving the messages included), serial awaits.
// Then CONCURRENCY writers, each invalidating again once its last invalidation returned, the writers taking
// turns of the event loop one at a time (as the write lane hands them out): coalesced (the invalidations made
// while a call is on its way go in the next call, invalidation-batch.ts) against one call each.
//
//   bun run bench -- cache-invalidation
import { RedisBus, type BusHandlers, type BusMessage, type CacheBus } from "../src/platform/cache/bus.ts";
import { RedisL2 } from "../src/platform/cache/l2.ts";
import { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { table, writeResult } from "./lib.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `bench:inv:${process.pid}:`;
const OPS = Number(process.env.BENCH_INVALIDATION_OPS ?? 2_000);
const ROUNDS = 7;
const CONCURRENCY = Number(process.env.BENCH_INVALIDATION_CONCURRENCY ?? 16);

/** The Redis bus without its carrier: every invalidation bumps, then publishes (the former two round trips). */
class TwoCallBus implements CacheBus {
  constructor(private readonly inner: RedisBus) {}
  get up(): boolean {
    return this.inner.up;
  }
  start(h: BusHandlers): Promise<void> {
    return this.inner.start(h);
  }
  publish(msg: BusMessage): Promise<void> {
    return this.inner.publish(msg);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const logger = createLogger("silent");
const redis = await openRedis(REDIS_URL, logger);
const mk = (id: string, bus: CacheBus, coalesce = true) =>
  new TwoTierCache({
    coalesceInvalidations: coalesce,
    instanceId: id,
    logger,
    l1: { enabled: true, maxItems: 1_000, maxBytes: 1 << 24, maxEntryBytes: 1 << 20 },
    ttlSeconds: 600,
    staleGraceSeconds: 60,
    l2: new RedisL2(redis, PREFIX, 1_000, { threshold: 5, cooldownMs: 1_000 }),
    bus,
  });
const channel = `${PREFIX}cache:bus`;
const oneCall = mk("one-call", new RedisBus(redis, channel, logger, 1_000));
const twoCalls = mk("two-calls", new TwoCallBus(new RedisBus(redis, channel, logger, 1_000)));
const coalesced = mk("coalesced", new RedisBus(redis, channel, logger, 1_000));
const eachOwnCall = mk("each-own-call", new RedisBus(redis, channel, logger, 1_000), false);
await oneCall.start();
await twoCalls.start();
await coalesced.start();
await eachOwnCall.start();

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const samples: Record<string, { cpu: number[]; wall: number[]; calls: number[] }> = {};
/** One writer per turn of the event loop: node-redis writes what was sent in one turn together anyway. */
const waiting: (() => void)[] = [];
let turning = false;
const nextTurn = () => {
  const go = waiting.shift();
  if (go === undefined) turning = false;
  else {
    go();
    setImmediate(nextTurn);
  }
};
const turn = () =>
  new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (!turning) {
      turning = true;
      setImmediate(nextTurn);
    }
  });
/** `workers` writers, each awaiting OPS / workers invalidations of its own user's tag, one after the other. */
async function run(cache: TwoTierCache, workers: number, tagOf: (w: number) => string, ops: number): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      const tags = [tagOf(w)];
      for (let i = 0; i < ops / workers; i++) {
        if (workers > 1) await turn();
        await cache.invalidateTags(tags);
      }
    }),
  );
}
const caches: Record<string, [TwoTierCache, number]> = {
  one_call: [oneCall, 1],
  two_calls: [twoCalls, 1],
  [`coalesced_c${CONCURRENCY}`]: [coalesced, CONCURRENCY],
  [`one_call_each_c${CONCURRENCY}`]: [eachOwnCall, CONCURRENCY],
};
let n = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, [cache, workers]] of Object.entries(caches)) {
    const base = n;
    n += workers;
    const tagOf = (w: number) => `user:${base + w}`;
    await run(cache, workers, tagOf, 200 * workers);
    const p0 = cache.stats().bus.published;
    const c0 = cpuUs();
    const t0 = performance.now();
    await run(cache, workers, tagOf, OPS);
    const s = (samples[name] ??= { cpu: [], wall: [], calls: [] });
    s.wall.push(((performance.now() - t0) * 1_000) / OPS);
    s.cpu.push((cpuUs() - c0) / OPS);
    // Every call publishes one bus message.
    s.calls.push((cache.stats().bus.published - p0) / OPS);
  }
}
if (Object.values(caches).some(([c]) => c.owed)) throw new Error("an invalidation failed during the run");
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const round1 = (v: number) => Math.round(v * 10) / 10;
const rows = Object.entries(samples).map(([path, s]) => ({
  path,
  "cpu µs/op": round1(median(s.cpu)),
  "wall µs/op": round1(median(s.wall)),
  "bus messages/op": Math.round(median(s.calls) * 1_000) / 1_000,
}));
const ratio = (a: number[], b: number[]) => Math.round((median(a) / median(b)) * 100) / 100;
const [one, two] = [samples.one_call!, samples.two_calls!];
const [co, each] = [samples[`coalesced_c${CONCURRENCY}`]!, samples[`one_call_each_c${CONCURRENCY}`]!];
const ratios = {
  cpu_one_over_two: ratio(one.cpu, two.cpu),
  wall_one_over_two: ratio(one.wall, two.wall),
  cpu_coalesced_over_each: ratio(co.cpu, each.cpu),
  wall_coalesced_over_each: ratio(co.wall, each.wall),
};
table(rows);
console.log(ratios);
writeResult("cache-invalidation", { ops: OPS, rounds: ROUNDS, rows, ...ratios, concurrency: CONCURRENCY, note: "median of rounds, one tag per invalidation; serial awaits, then CONCURRENCY writers (distinct tags) taking event-loop turns one at a time" });

for (const [c] of Object.values(caches)) await c.close();
const keys = await redis.keys(`${PREFIX}*`);
if (keys.length) await redis.del(keys);
await closeRedis(redis);
process.exit(0);
