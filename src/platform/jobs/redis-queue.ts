// The durable queue: Redis streams with one consumer group. A job is acknowledged only after its handler
// returns; a delivery whose worker stops extending its hold is taken over by another worker after the
// visibility timeout; failures are retried from a delayed set with exponential backoff and jitter, then kept
// in a failed set. This class only composes the pieces in redis/ (producer, worker, finisher, hold keeper,
// promoter, maintenance); the atomic steps are the Lua scripts of redis-scripts.ts.
import type { Redis } from "../redis.ts";
import type { QueueOptions } from "./options.ts";
import type { EnqueueOptions, EnqueueRequest, Job, JobDefinition, JobQueue, QueueStats, QueueTypeCounts } from "./port.ts";
import { queueContext, type QueueContext } from "./redis/context.ts";
import { Finisher } from "./redis/finisher.ts";
import { HoldKeeper } from "./redis/hold-keeper.ts";
import { Maintenance } from "./redis/maintenance.ts";
import { Producer } from "./redis/producer.ts";
import { Promoter } from "./redis/promoter.ts";
import { Worker } from "./redis/worker.ts";

export { GROUP } from "./redis/context.ts";

export class RedisQueue implements JobQueue {
  readonly kind = "redis" as const;
  private readonly defs = new Map<string, JobDefinition<any>>();
  private readonly ctx: QueueContext;
  private readonly producer: Producer;
  private readonly holds: HoldKeeper;
  private readonly finisher: Finisher;
  private readonly worker: Worker;
  private readonly promoter: Promoter;
  private readonly maintenance: Maintenance;
  private started = false;
  private closing = false;
  private closed: Promise<void> | undefined;

  constructor(redis: Redis, prefix: string, o: QueueOptions) {
    this.ctx = queueContext(redis, prefix, o);
    this.promoter = new Promoter(this.ctx);
    const wakePromoter = (inMs: number) => this.promoter.wake(inMs);
    this.producer = new Producer(this.ctx, this.defs, wakePromoter);
    this.holds = new HoldKeeper(this.ctx);
    this.finisher = new Finisher(this.ctx, wakePromoter);
    this.worker = new Worker(this.ctx, this.defs, this.holds, this.finisher);
    this.maintenance = new Maintenance(this.ctx);
  }

  register(def: JobDefinition<any>): void {
    this.defs.set(def.type, def);
  }

  definition(type: string): JobDefinition<any> | undefined {
    return this.defs.get(type);
  }

  async enqueue(type: string, payload: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<string> {
    const [id] = await this.producer.enqueueMany([{ ...opts, type, payload }]);
    return id!;
  }

  enqueueMany(jobs: readonly EnqueueRequest[]): Promise<string[]> {
    return this.producer.enqueueMany(jobs);
  }

  getJob(id: string): Promise<Job | null> {
    return this.producer.getJob(id);
  }

  getJobs(ids: readonly string[]): Promise<Record<string, Job | null>> {
    return this.producer.getJobs(ids);
  }

  listFailed(limit: number): Promise<Job[]> {
    return this.producer.listFailed(limit);
  }

  retryFailed(id: string): Promise<string | null> {
    return this.producer.retryFailed(id);
  }

  discardFailed(id: string): Promise<boolean> {
    return this.producer.discardFailed(id);
  }

  finishedTracked(ids: readonly string[]): Promise<Set<string>> {
    return this.producer.finishedTracked(ids);
  }

  forgetFinished(ids: readonly string[]): Promise<void> {
    return this.producer.forgetFinished(ids);
  }

  stats(): Promise<QueueStats> {
    return this.producer.stats(this.worker.runningHere);
  }

  countsByType(): Promise<QueueTypeCounts> {
    return this.producer.countsByType();
  }

  start(opts: { canWrite: () => boolean }): void {
    if (this.started) return;
    this.started = true;
    const o = this.ctx.o;
    this.ctx.log.info("job worker started", { consumer: o.consumerName, concurrency: o.concurrency, visibility_timeout_ms: o.visibilityTimeoutMs });
    this.worker.start(opts.canWrite);
    this.holds.start();
    this.promoter.start();
    this.maintenance.start();
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  /** Order matters: holds are kept while handlers drain, the blocking connection goes last. */
  private async shutdown(): Promise<void> {
    this.closing = true;
    if (!this.started) return;
    this.promoter.stop();
    await this.worker.drain();
    await this.finisher.settle();
    this.holds.stop();
    this.worker.stopTimers();
    this.maintenance.stop();
    await this.promoter.settle();
    this.worker.closeConnection();
    this.ctx.log.info("job worker stopped", { consumer: this.ctx.o.consumerName });
  }
}
