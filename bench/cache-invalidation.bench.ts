// What one write's cache invalidation costs with Redis: the new tag token and the bus message in one call
// (the Lua script, two-tier.ts) against the two calls in a row it replaced (MULTI/SET/EXEC, then PUBLISH: what
// the same cache does with a bus that cannot carry the message). Same process, same Redis, rounds alternated;
// CPU from process.cpuUsage (the process's own subscriber receiving the messages included), serial awaits.
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
const mk = (id: string, bus: CacheBus) =>
  new TwoTierCache({
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
await oneCall.start();
await twoCalls.start();

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const samples: Record<string, { cpu: number[]; wall: number[] }> = { one_call: { cpu: [], wall: [] }, two_calls: { cpu: [], wall: [] } };
const caches = { one_call: oneCall, two_calls: twoCalls };
let n = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, cache] of Object.entries(caches)) {
    const tags = [`user:${++n}`];
    for (let i = 0; i < 200; i++) await cache.invalidateTags(tags);
    const c0 = cpuUs();
    const t0 = performance.now();
    for (let i = 0; i < OPS; i++) await cache.invalidateTags(tags);
    samples[name]!.wall.push(((performance.now() - t0) * 1_000) / OPS);
    samples[name]!.cpu.push((cpuUs() - c0) / OPS);
  }
}
if (oneCall.owed || twoCalls.owed) throw new Error("an invalidation failed during the run");
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const round1 = (v: number) => Math.round(v * 10) / 10;
const rows = Object.entries(samples).map(([path, s]) => ({ path, "cpu µs/op": round1(median(s.cpu)), "wall µs/op": round1(median(s.wall)) }));
const [one, two] = [samples.one_call!, samples.two_calls!];
const ratios = { cpu_one_over_two: Math.round((median(one.cpu) / median(two.cpu)) * 100) / 100, wall_one_over_two: Math.round((median(one.wall) / median(two.wall)) * 100) / 100 };
table(rows);
console.log(ratios);
const file = writeResult("cache-invalidation", { ops: OPS, rounds: ROUNDS, rows, ...ratios, note: "median of rounds, serial awaits, one tag per invalidation" });
console.log(`wrote ${file}`);

await oneCall.close();
await twoCalls.close();
const keys = await redis.keys(`${PREFIX}*`);
if (keys.length) await redis.del(keys);
await closeRedis(redis);
process.exit(0);
