// The circuit breaker: its cost on a call (an async no-op, bare and through Breaker.call, same run), and what a
// caller waits for a hanging dependency before the circuit opens (its timeout) and while it is open.
//
//   bun run bench -- breaker
import { HttpMailer, mailFailureIsAboutTheMessage } from "../src/platform/mail/http-mailer.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
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
  { measure: "hanging API, calls before open (ms)", value: result.hanging_dependency.calls_before_open_ms.join(", ") },
  { measure: "while open p50 / p99 (ms)", value: `${result.hanging_dependency.open_p50_ms} / ${result.hanging_dependency.open_p99_ms}` },
  { measure: "requests reaching the API while open", value: result.hanging_dependency.requests_reaching_the_dependency_while_open },
]);
console.log(`wrote ${writeResult("breaker", result)}`);
process.exit(0);
