// The job queue against BullMQ on the same Redis, in the same run: enqueue N no-op jobs in batches of 1,000,
// then process them at concurrency 50 until every one is acknowledged. Rounds alternate (ours, BullMQ, ours, …)
// and the median of each is reported. Guarantees are on for both: ours as always (ack after the handler,
// holds and takeovers, 3 retries with backoff, retention); BullMQ with 3 attempts, exponential backoff,
// stalled-job checks and age-based retention. Loopback only, bounded (a few seconds per round). The machine
// is shared: read the ratios, not the absolute figures.
import { Queue, Worker } from "bullmq";
import { RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { openRedis } from "../src/platform/redis.ts";
import { table, writeResult } from "./lib.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const N = Number(process.env.JOBS_BENCH_N ?? 20_000);
const BATCH = 1_000;
const CONCURRENCY = 50;
const ROUNDS = Number(process.env.JOBS_BENCH_ROUNDS ?? 3);
const logger = createLogger("silent");
const redisUrl = new URL(REDIS_URL);
const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null };

interface Round {
  enqueuePerSec: number;
  processPerSec: number;
}

async function dropPrefix(prefix: string): Promise<void> {
  const r = await openRedis(REDIS_URL, logger);
  for await (const keys of r.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length) await r.del(keys);
  await r.close();
}

async function ours(): Promise<Round> {
  const prefix = `bench:jobs:${crypto.randomUUID().slice(0, 8)}:`;
  const redis = await openRedis(REDIS_URL, logger);
  const q = new RedisQueue(redis, prefix, {
    concurrency: CONCURRENCY,
    visibilityTimeoutMs: 30_000,
    maxRetries: 3,
    backoffBaseMs: 1_000,
    backoffCapMs: 300_000,
    retentionCompletedMs: 86_400_000,
    retentionFailedMs: 7 * 86_400_000,
    shutdownGraceMs: 5_000,
    consumerName: `bench-${process.pid}`,
    logger,
  });
  let handled = 0;
  q.register({ type: "noop", writesDb: false, handler: async () => void handled++ });
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await q.enqueueMany(Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => ({ type: "noop", payload: { i: i + j } })));
  }
  const t1 = performance.now();
  q.start({ canWrite: () => true });
  // Done when every job is acknowledged (the completed counter moves in the acknowledging script).
  while ((await q.stats()).completed_total < N) await Bun.sleep(5);
  const t2 = performance.now();
  await q.close();
  await redis.close();
  await dropPrefix(prefix);
  if (handled < N) throw new Error(`ours handled ${handled} of ${N}`);
  return { enqueuePerSec: (N / (t1 - t0)) * 1000, processPerSec: (N / (t2 - t1)) * 1000 };
}

async function bullmq(): Promise<Round> {
  const name = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const prefix = "benchbull";
  const queue = new Queue(name, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 4, // 3 retries, as ours
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 7 * 86_400 },
    },
  });
  await queue.waitUntilReady();
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    await queue.addBulk(Array.from({ length: Math.min(BATCH, N - i) }, (_, j) => ({ name: "noop", data: { i: i + j } })));
  }
  const t1 = performance.now();
  let completed = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const worker = new Worker(name, async () => {}, { connection, prefix, concurrency: CONCURRENCY, autorun: false });
  worker.on("completed", () => {
    if (++completed === N) resolveDone();
  });
  void worker.run();
  await done;
  const t2 = performance.now();
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { enqueuePerSec: (N / (t1 - t0)) * 1000, processPerSec: (N / (t2 - t1)) * 1000 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

// A small warm-up of each (JIT, script loading, connections), not measured.
const results = { ours: [] as Round[], bullmq: [] as Round[] };
await ours();
await bullmq();
for (let r = 0; r < ROUNDS; r++) {
  results.ours.push(await ours());
  results.bullmq.push(await bullmq());
}

const summary = {
  ours: {
    enqueue_per_sec: Math.round(median(results.ours.map((r) => r.enqueuePerSec))),
    process_per_sec: Math.round(median(results.ours.map((r) => r.processPerSec))),
  },
  bullmq: {
    enqueue_per_sec: Math.round(median(results.bullmq.map((r) => r.enqueuePerSec))),
    process_per_sec: Math.round(median(results.bullmq.map((r) => r.processPerSec))),
  },
};
const ratio = {
  enqueue: summary.ours.enqueue_per_sec / summary.bullmq.enqueue_per_sec,
  process: summary.ours.process_per_sec / summary.bullmq.process_per_sec,
};
console.log(`${N} no-op jobs, batches of ${BATCH}, concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating rounds`);
table([
  { queue: "ours (streams)", "enqueue jobs/s": summary.ours.enqueue_per_sec, "process jobs/s": summary.ours.process_per_sec },
  { queue: "BullMQ", "enqueue jobs/s": summary.bullmq.enqueue_per_sec, "process jobs/s": summary.bullmq.process_per_sec },
  { queue: "ratio ours/BullMQ", "enqueue jobs/s": Number(ratio.enqueue.toFixed(2)), "process jobs/s": Number(ratio.process.toFixed(2)) },
]);
writeResult("jobs", { jobs: N, batch: BATCH, concurrency: CONCURRENCY, rounds: ROUNDS, summary, ratio, raw: results });
process.exit(0);
