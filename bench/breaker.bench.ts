// The circuit breaker: its cost on a call (an async no-op, bare and through Breaker.call, same run), what a
// caller waits for a hanging dependency before the circuit opens (its timeout) and while it is open, and the
// Redis L2's question: its own breaker (src/platform/cache/l2.ts) against Breaker.call around the L2's read (an
// MGET of an entry and two tag keys, serial, rounds alternated), to decide whether the L2 moves onto Breakers.
//
//   bun run bench -- breaker
import { HttpMailer, mailFailureIsAboutTheMessage } from "../src/platform/mail/http-mailer.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { Breaker as L2Breaker } from "../src/platform/cache/l2.ts";
import { closeRedis, openRedis } from "../src/platform/redis.ts";
import { Breaker } from "../src/platform/resilience/breakers.ts";
import { startFaultyServer } from "../test/support/faulty-server.ts";
import { table, writeResult } from "./lib.ts";

const silent = createLogger("silent");
const N = 200_000;
const ROUNDS = 5;
const TIMEOUT_MS = 1_500;

async function perCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5_000; i++) await fn();
  const start = performance.now();
  for (let i = 0; i < N; i++) await fn();
  return ((performance.now() - start) * 1000) / N;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (n: number) => Math.round(n * 1000) / 1000;

const noop = async () => 1;
const closed = new Breaker("bench", { threshold: 5, resetMs: 30_000, windowMs: 10_000 }, silent);
const bare: number[] = [];
const guarded: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  bare.push(await perCall(noop));
  guarded.push(await perCall(() => closed.call(noop)));
}

// The L2's own breaker, used the way RedisL2.call uses it.
const own = new L2Breaker(5, 1_000);
const viaOwn = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
  if (!own.allow()) return undefined;
  try {
    const v = await fn();
    own.success();
    return v;
  } catch {
    own.failure();
    return undefined;
  }
};
const ownNoop: number[] = [];
for (let r = 0; r < ROUNDS; r++) ownNoop.push(await perCall(() => viaOwn(noop)));

const L2_N = Number(process.env.BENCH_L2_OPS ?? 5_000);
const redis = await openRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", silent);
const prefix = `bench:breaker:${process.pid}:`;
const keys = [`${prefix}e`, `${prefix}t1`, `${prefix}t2`];
await redis.set(keys[0]!, "v1\n" + JSON.stringify({ e: Date.now() + 600_000 }) + "\n" + JSON.stringify({ id: 1, name: "x".repeat(2_000) }));
const mget = () => redis.mGet(keys);
async function perRedisCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await fn();
  const start = performance.now();
  for (let i = 0; i < L2_N; i++) await fn();
  return ((performance.now() - start) * 1000) / L2_N;
}
const l2 = { bare: [] as number[], own: [] as number[], opossum: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  l2.bare.push(await perRedisCall(mget));
  l2.own.push(await perRedisCall(() => viaOwn(mget)));
  l2.opossum.push(await perRedisCall(() => closed.call(mget)));
}
await redis.del(keys);
await closeRedis(redis);
closed.shutdown();

const dep = startFaultyServer();
dep.set({ kind: "hang" });
const breaker = new Breaker("mail_api", { threshold: 3, resetMs: 600_000, windowMs: 10_000 }, silent, mailFailureIsAboutTheMessage);
const mailer = new HttpMailer({ url: dep.url, from: "bench <b@example.com>", timeoutMs: TIMEOUT_MS, breaker });
const send = async () => {
  const start = performance.now();
  await mailer.send({ to: "x@example.com", subject: "s", text: "t" }, { idempotencyKey: "k" }).catch(() => undefined);
  return performance.now() - start;
};
const beforeOpen = await Promise.all([send(), send(), send()]);
const hitsAtOpen = dep.hits;
const whileOpen: number[] = [];
for (let i = 0; i < 1_000; i++) whileOpen.push(await send());
whileOpen.sort((a, b) => a - b);
const result = {
  description: "Per-call cost of Breaker.call (opossum) against a bare async call, and a caller's wait on a hanging mail API before and after the circuit opens.",
  overhead: {
    bare_us_per_call: round(median(bare)),
    breaker_us_per_call: round(median(guarded)),
    ratio: round(median(guarded) / median(bare)),
    calls_per_round: N,
    rounds: ROUNDS,
  },
  l2: {
    description: "The Redis L2's read (MGET of 3 keys, a 2 KB entry) bare, through the L2's own breaker and through Breaker.call (opossum); serial, median of the rounds.",
    own_breaker_noop_us_per_call: round(median(ownNoop)),
    bare_mget_us: round(median(l2.bare)),
    own_breaker_mget_us: round(median(l2.own)),
    opossum_mget_us: round(median(l2.opossum)),
    opossum_minus_own_us: round(median(l2.opossum) - median(l2.own)),
    calls_per_round: L2_N,
  },
  hanging_dependency: {
    timeout_ms: TIMEOUT_MS,
    calls_before_open_ms: beforeOpen.map((x) => Math.round(x)),
    state_after: breaker.state,
    calls_while_open: whileOpen.length,
    requests_reaching_the_dependency_while_open: dep.hits - hitsAtOpen,
    open_p50_ms: round(pct(whileOpen, 50)),
    open_p99_ms: round(pct(whileOpen, 99)),
    open_max_ms: round(whileOpen.at(-1)!),
  },
};
breaker.shutdown();
await dep.close();
table([
  { measure: "bare call (us)", value: result.overhead.bare_us_per_call },
  { measure: "through the breaker (us)", value: result.overhead.breaker_us_per_call },
  { measure: "ratio", value: result.overhead.ratio },
  { measure: "L2's own breaker, no-op (us)", value: result.l2.own_breaker_noop_us_per_call },
  { measure: "L2 read: bare / own breaker / opossum (us)", value: `${result.l2.bare_mget_us} / ${result.l2.own_breaker_mget_us} / ${result.l2.opossum_mget_us}` },
  { measure: "hanging API, calls before open (ms)", value: result.hanging_dependency.calls_before_open_ms.join(", ") },
  { measure: "while open p50 / p99 (ms)", value: `${result.hanging_dependency.open_p50_ms} / ${result.hanging_dependency.open_p99_ms}` },
  { measure: "requests reaching the API while open", value: result.hanging_dependency.requests_reaching_the_dependency_while_open },
]);
writeResult("breaker", result);
process.exit(0);
