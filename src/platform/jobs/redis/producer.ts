// The producing and inspecting side of the Redis queue: enqueue (one script per chunk), job records, the
// failed list with retry/discard, counts, and the finished markers the outbox reconciler reads.
import { TYPE_SCAN_BOUND, type EnqueueRequest, type Job, type JobDefinition, type JobStatus, type QueueStats, type QueueTypeCounts, type TypeCounts } from "../port.ts";
import { COUNT_BY_TYPE, ENQUEUE } from "../redis-scripts.ts";
import { STREAMS, type QueueContext, type StreamName } from "./context.ts";

const JOB_FIELDS = ["id", "type", "status", "created_at", "started_at", "completed_at", "error_message", "retry_count", "max_retries"] as const;
const ENQUEUE_CHUNK = 500;

const iso = (ms: string | null | undefined): string | null => (ms ? new Date(Number(ms)).toISOString() : null);

export function jobFromFields(values: readonly (string | null | undefined)[]): Job | null {
  const [id, type, status, created, started, completed, error, retry, maxRetries] = values;
  if (!id || !type || !status) return null;
  return {
    id,
    type,
    status: status as JobStatus,
    created_at: iso(created) ?? new Date(0).toISOString(),
    started_at: iso(started),
    completed_at: iso(completed),
    error_message: error ? error : null,
    retry_count: Number(retry ?? 0),
    max_retries: Number(maxRetries ?? 0),
  };
}

export class Producer {
  constructor(
    private readonly ctx: QueueContext,
    private readonly defs: ReadonlyMap<string, JobDefinition<any>>,
    /** Told the soonest delay of each chunk holding delayed jobs, so they are not left waiting past it. */
    private readonly onDelayed: (inMs: number) => void,
  ) {}

  /** Unknown types go to the database stream: the cautious choice (only the primary reads it). */
  private streamOf(type: string): StreamName {
    return this.defs.get(type)?.writesDb === false ? "any" : "db";
  }

  async enqueueMany(jobs: readonly EnqueueRequest[]): Promise<string[]> {
    const { redis, base, o } = this.ctx;
    const ids: string[] = [];
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
      const chunk = jobs.slice(i, i + ENQUEUE_CHUNK);
      const args: (string | number)[] = [base, Date.now(), chunk.length];
      for (const j of chunk) {
        args.push(
          j.jobId ?? Bun.randomUUIDv7(),
          j.type,
          JSON.stringify(j.payload),
          j.maxRetries ?? this.defs.get(j.type)?.maxRetries ?? o.maxRetries,
          j.idempotencyKey ?? "",
          j.tracked ? "db" : this.streamOf(j.type),
          Math.max(0, Math.round(j.delayMs ?? 0)),
          j.tracked ? "1" : "",
        );
      }
      const out = (await ENQUEUE.run(redis, [], args)) as string[];
      ids.push(...out);
      if (chunk.some((j) => (j.delayMs ?? 0) > 0)) this.onDelayed(Math.min(...chunk.map((j) => j.delayMs ?? Infinity)));
    }
    return ids;
  }

  async getJob(id: string): Promise<Job | null> {
    return jobFromFields((await this.ctx.redis.hmGet(this.ctx.base + "job:" + id, [...JOB_FIELDS])) as (string | null)[]);
  }

  async getJobs(ids: readonly string[]): Promise<Record<string, Job | null>> {
    const rows = await Promise.all(ids.map((id) => this.ctx.redis.hmGet(this.ctx.base + "job:" + id, [...JOB_FIELDS])));
    return Object.fromEntries(ids.map((id, i) => [id, jobFromFields(rows[i] as (string | null)[])]));
  }

  async listFailed(limit: number): Promise<Job[]> {
    const ids = (await this.ctx.redis.sendCommand(["ZREVRANGE", this.ctx.base + "failed", "0", String(Math.max(0, limit - 1))])) as string[];
    const jobs = await this.getJobs(ids);
    return ids.map((id) => jobs[id]).filter((j): j is Job => j !== null && j !== undefined);
  }

  async retryFailed(id: string): Promise<string | null> {
    const { redis, base, o } = this.ctx;
    const [status, type, payload, maxRetries] = (await redis.hmGet(base + "job:" + id, ["status", "type", "payload", "max_retries"])) as (string | null)[];
    if (status !== "failed" || !type || payload === null || payload === undefined) return null;
    // Taking it out of the failed set is the claim: two retries of one job make one new job.
    if (Number(await redis.sendCommand(["ZREM", base + "failed", id])) !== 1) return null;
    const [next] = await this.enqueueMany([{ type, payload: JSON.parse(payload), maxRetries: Number(maxRetries ?? o.maxRetries) }]);
    await redis.sendCommand(["DEL", base + "job:" + id]);
    return next!;
  }

  async discardFailed(id: string): Promise<boolean> {
    if (Number(await this.ctx.redis.sendCommand(["ZREM", this.ctx.base + "failed", id])) !== 1) return false;
    await this.ctx.redis.sendCommand(["DEL", this.ctx.base + "job:" + id]);
    return true;
  }

  async finishedTracked(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const scores = (await this.ctx.redis.sendCommand(["ZMSCORE", this.ctx.base + "finished", ...ids])) as (string | null)[];
    return new Set(ids.filter((_, i) => scores[i] !== null && scores[i] !== undefined));
  }

  async forgetFinished(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.ctx.redis.sendCommand(["ZREM", this.ctx.base + "finished", ...ids]);
  }

  async stats(runningHere: number): Promise<QueueStats> {
    const { redis, base } = this.ctx;
    const [db, any, delayed, failed, completed] = (await Promise.all([
      redis.sendCommand(["XLEN", base + "stream:db"]),
      redis.sendCommand(["XLEN", base + "stream:any"]),
      redis.sendCommand(["ZCARD", base + "delayed"]),
      redis.sendCommand(["ZCARD", base + "failed"]),
      redis.sendCommand(["GET", base + "completed_total"]),
    ])) as unknown as [number, number, number, number, string | null];
    return { waiting: db + any, delayed, running_here: runningHere, failed, completed_total: Number(completed ?? 0) };
  }

  async countsByType(bound = TYPE_SCAN_BOUND): Promise<QueueTypeCounts> {
    const out = (await COUNT_BY_TYPE.run(this.ctx.redis, [], [this.ctx.base, bound, ...STREAMS])) as (string | number)[];
    const types: TypeCounts[] = [];
    for (let i = 1; i + 4 < out.length; i += 5) {
      types.push({ type: String(out[i]), waiting: Number(out[i + 1]), delayed: Number(out[i + 2]), running: Number(out[i + 3]), failed: Number(out[i + 4]) });
    }
    return { types: types.sort((a, b) => a.type.localeCompare(b.type)), complete: Number(out[0]) === 1 };
  }
}
