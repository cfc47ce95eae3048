// 1,000 jobs, two worker processes, one killed with SIGKILL midway: every job completes, none is lost, and
// the jobs run twice are only ones the killed worker had in flight (at most its concurrency).
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import type { Subprocess } from "bun";
import type { Redis } from "../src/platform/redis.ts";
import { RedisQueue } from "../src/platform/jobs/redis-queue.ts";
import { dropPrefix, REDIS_URL, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { queueOptions, redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { spawnBun } from "./support/process.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const JOBS = 1_000;
const CONCURRENCY = 8;
const prefix = testPrefix("jobs-crash");
const procs: Subprocess[] = [];
let redis: Redis | undefined;

afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  if (redis) {
    await dropPrefix(redis, prefix);
    await redis.close();
  }
});

async function spawnWorker(): Promise<Subprocess> {
  const s = spawnBun(["test/fixtures/job-worker.ts"], {
    REDIS_URL,
    JOBS_PREFIX: prefix,
    CONCURRENCY: String(CONCURRENCY),
    // Long enough that a worker of a loaded machine never loses a hold it is still extending.
    VISIBILITY_MS: "3000",
    WORK_MS: "12",
  });
  procs.push(s.proc);
  await s.waitForOutput("ready");
  return s.proc;
}

test("1,000 jobs, two workers, one SIGKILLed midway: all complete, none lost, duplicates bounded by what was in flight", async () => {
  redis = await redisClient();
  const producer = new RedisQueue(redis, prefix, queueOptions());
  producer.register({ type: "crash_test", writesDb: false, handler: async () => {} });
  const ids = await producer.enqueueMany(Array.from({ length: JOBS }, (_, i) => ({ type: "crash_test", payload: { i } })));
  expect(new Set(ids).size).toBe(JOBS);

  const [victim] = await Promise.all([spawnWorker(), spawnWorker()]);
  const victimPid = String(victim!.pid);
  // Kill one worker once a good part of the work is done and it is busy.
  const doneAtKill = await waitUntil(async () => {
    const s = await producer.stats();
    return s.completed_total >= JOBS * 0.3 ? s.completed_total : 0;
  }, 60_000, "30% of the jobs to complete");
  victim!.kill("SIGKILL");
  await victim!.exited;
  expect(doneAtKill).toBeLessThan(JOBS);

  await waitUntil(async () => (await producer.stats()).completed_total >= JOBS, 60_000, "every job to complete");
  const jobs = await producer.getJobs(ids);
  const notCompleted = ids.filter((id) => jobs[id]?.status !== "completed");
  expect(notCompleted).toEqual([]);

  const started = (await redis.lRange(`${prefix}t:started`, 0, -1)) as string[];
  const ended = (await redis.lRange(`${prefix}t:ended`, 0, -1)) as string[];
  const runs = new Map<string, string[]>();
  for (const s of started) {
    const [pid, id] = s.split(":") as [string, string];
    runs.set(id, [...(runs.get(id) ?? []), pid]);
  }
  // None lost: every job ran.
  expect(ids.filter((id) => !runs.has(id))).toEqual([]);
  // Duplicates: only jobs the killed worker had started, and no more than it could hold at once.
  const duplicated = [...runs].filter(([, pids]) => pids.length > 1);
  const extraRuns = duplicated.reduce((n, [, pids]) => n + pids.length - 1, 0);
  const victimRuns = started.filter((s) => s.startsWith(`${victimPid}:`)).length;
  const victimEnded = new Set(ended.filter((s) => s.startsWith(`${victimPid}:`)));
  const cut = started.filter((s) => s.startsWith(`${victimPid}:`) && !victimEnded.has(s)).map((s) => s.split(":")[1]!);
  const victimInFlight = cut.length;
  console.log(
    `crash test: ${JOBS} jobs, ${doneAtKill} done at the kill, killed worker ran ${victimRuns} (${victimInFlight} cut mid-run), ` +
      `${duplicated.length} jobs ran twice (${extraRuns} extra runs)`,
  );
  expect(victimRuns).toBeGreaterThan(0);
  expect(extraRuns).toBeLessThanOrEqual(CONCURRENCY);
  for (const [, pids] of duplicated) expect(pids).toContain(victimPid);
  // Jobs cut mid-run by the kill were all run again (and completed, checked above).
  for (const id of cut) expect(runs.get(id)!.length).toBeGreaterThanOrEqual(2);
}, 120_000);
