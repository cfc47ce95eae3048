// The no-Redis mode: an in-process queue with the Redis queue's API, retries, backoff, failed list, idempotency
// keys, retention and concurrency. Not durable: jobs die with the process (the outbox relay enqueues again
// the ones born from database writes, see relay.ts).
import type { Logger } from "../observability/logger.ts";
import type { QueueOptions } from "./options.ts";
import {
  decideFailure,
  PermanentJobError,
  type EnqueueOptions,
  type EnqueueRequest,
  type Job,
  type JobDefinition,
  type JobQueue,
  type QueueStats,
  type QueueTypeCounts,
  type TypeCounts,
} from "./port.ts";
import { errorText } from "./failure.ts";

interface Entry {
  job: Job;
  payload: Record<string, unknown>;
  idem: string | null;
  writesDb: boolean;
  expiresAt: number;
  /** The outbox waits for it: a finished marker is kept when it finishes (see EnqueueOptions.tracked). */
  tracked: boolean;
  timer?: ReturnType<typeof setTimeout>;
  ctrl?: AbortController;
}

export class MemoryQueue implements JobQueue {
  readonly kind = "memory" as const;
  private readonly defs = new Map<string, JobDefinition<any>>();
  private readonly entries = new Map<string, Entry>();
  private readonly idem = new Map<string, string>();
  /** Ready job ids, in order, by where they may run. */
  private readonly ready = { db: [] as string[], any: [] as string[] };
  private readonly running = new Set<Promise<void>>();
  private readonly failed = new Set<string>();
  /** Finished tracked jobs, kept past their records' retention until forgetFinished(). */
  private readonly finishedMarks = new Set<string>();
  private completedTotal = 0;
  private started = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private canWrite: () => boolean = () => true;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private recheck: ReturnType<typeof setInterval> | undefined;
  private readonly log: Logger;
  private pumpScheduled = false;

  constructor(private readonly o: QueueOptions) {
    this.log = o.logger.child({ component: "jobs" });
  }

  register(def: JobDefinition<any>): void {
    this.defs.set(def.type, def);
  }

  definition(type: string): JobDefinition<any> | undefined {
    return this.defs.get(type);
  }

  async enqueue(type: string, payload: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<string> {
    return this.add({ ...opts, type, payload });
  }

  async enqueueMany(jobs: readonly EnqueueRequest[]): Promise<string[]> {
    return jobs.map((j) => this.add(j));
  }

  private add(r: EnqueueRequest): string {
    const now = Date.now();
    // Relayed again after it finished (its record may have expired since): the same job, not a new run.
    if (r.tracked && r.jobId && this.finishedMarks.has(r.jobId)) return r.jobId;
    if (r.idempotencyKey) {
      const known = this.idem.get(r.idempotencyKey);
      if (known && this.alive(known, now)) {
        if (r.tracked) this.track(known);
        return known;
      }
    }
    const id = r.jobId ?? Bun.randomUUIDv7();
    if (this.alive(id, now)) {
      if (r.tracked) this.track(id);
      if (r.idempotencyKey) this.idem.set(r.idempotencyKey, id);
      return id;
    }
    const def = this.defs.get(r.type);
    const entry: Entry = {
      job: {
        id,
        type: r.type,
        status: "pending",
        created_at: new Date(now).toISOString(),
        started_at: null,
        completed_at: null,
        error_message: null,
        retry_count: 0,
        max_retries: r.maxRetries ?? def?.maxRetries ?? this.o.maxRetries,
      },
      // A copy, as Redis would keep: later changes by the caller do not reach the job.
      payload: structuredClone(r.payload),
      idem: r.idempotencyKey ?? null,
      // The outbox's jobs run where their finish is recorded (the primary).
      writesDb: r.tracked === true || def?.writesDb !== false,
      expiresAt: Infinity,
      tracked: r.tracked === true,
    };
    this.entries.set(id, entry);
    if (r.idempotencyKey) this.idem.set(r.idempotencyKey, id);
    if ((r.delayMs ?? 0) > 0) entry.timer = setTimeout(() => this.makeReady(entry), r.delayMs);
    else this.makeReady(entry);
    return id;
  }

  /** The outbox waits for an existing job: mark it so, and leave its finished marker now if it has finished. */
  private track(id: string): void {
    const e = this.entries.get(id)!;
    e.tracked = true;
    if (e.job.status === "completed" || e.job.status === "failed") this.finishedMarks.add(id);
  }

  async finishedTracked(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.finishedMarks.has(id)));
  }

  async forgetFinished(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.finishedMarks.delete(id);
  }

  private alive(id: string, now: number): boolean {
    const e = this.entries.get(id);
    return e !== undefined && e.expiresAt > now;
  }

  private makeReady(e: Entry): void {
    e.timer = undefined;
    if (this.closing || this.entries.get(e.job.id) !== e) return;
    (e.writesDb ? this.ready.db : this.ready.any).push(e.job.id);
    this.schedulePump();
  }

  /** Handlers start in a task of their own, never inside the enqueuer's call stack. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  async getJob(id: string): Promise<Job | null> {
    return this.alive(id, Date.now()) ? { ...this.entries.get(id)!.job } : null;
  }

  async getJobs(ids: readonly string[]): Promise<Record<string, Job | null>> {
    const now = Date.now();
    return Object.fromEntries(ids.map((id) => [id, this.alive(id, now) ? { ...this.entries.get(id)!.job } : null]));
  }

  async listFailed(limit: number): Promise<Job[]> {
    const now = Date.now();
    return [...this.failed]
      .reverse()
      .filter((id) => this.alive(id, now))
      .slice(0, limit)
      .map((id) => ({ ...this.entries.get(id)!.job }));
  }

  async retryFailed(id: string): Promise<string | null> {
    const e = this.entries.get(id);
    if (!e || !this.failed.has(id) || !this.alive(id, Date.now())) return null;
    this.failed.delete(id);
    this.entries.delete(id);
    return this.enqueue(e.job.type, structuredClone(e.payload), { maxRetries: e.job.max_retries });
  }

  async discardFailed(id: string): Promise<boolean> {
    if (!this.failed.delete(id)) return false;
    this.entries.delete(id);
    return true;
  }

  async stats(): Promise<QueueStats> {
    let delayed = 0;
    for (const e of this.entries.values()) if (e.timer) delayed++;
    return {
      waiting: this.ready.db.length + this.ready.any.length + this.running.size,
      delayed,
      running_here: this.running.size,
      failed: this.failed.size,
      completed_total: this.completedTotal,
    };
  }

  /** Every entry is in memory, so the counts are exact (one pass over the retained jobs). */
  async countsByType(): Promise<QueueTypeCounts> {
    const rows = new Map<string, TypeCounts>();
    for (const e of this.entries.values()) {
      const { type, status, id } = e.job;
      const col = e.timer ? "delayed" : status === "running" ? "running" : status === "failed" ? (this.failed.has(id) ? "failed" : null) : status === "completed" ? null : "waiting";
      if (!col) continue;
      let r = rows.get(type);
      if (!r) rows.set(type, (r = { type, waiting: 0, delayed: 0, running: 0, failed: 0 }));
      r[col]++;
    }
    return { types: [...rows.values()].sort((a, b) => a.type.localeCompare(b.type)), complete: true };
  }

  start(opts: { canWrite: () => boolean }): void {
    if (this.started) return;
    this.started = true;
    this.canWrite = opts.canWrite;
    // The instance's one no-Redis warning (main/platform.ts) already says jobs are not durable.
    this.log.info("in-process job queue started", { concurrency: this.o.concurrency });
    const sweepEvery = Math.max(50, Math.min(60_000, this.o.retentionCompletedMs, this.o.retentionFailedMs));
    this.sweeper = setInterval(() => this.sweep(), sweepEvery);
    // Database jobs wait while this instance cannot write; look again every half second.
    this.recheck = setInterval(() => this.ready.db.length > 0 && this.schedulePump(), 500);
    this.schedulePump();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, e] of this.entries) {
      if (e.expiresAt > now) continue;
      this.entries.delete(id);
      this.failed.delete(id);
      if (e.idem && this.idem.get(e.idem) === id) this.idem.delete(e.idem);
    }
  }

  private next(): string | undefined {
    if (this.canWrite() && this.ready.db.length > 0 && (this.ready.any.length === 0 || this.running.size % 2 === 0)) {
      return this.ready.db.shift();
    }
    return this.ready.any.shift() ?? (this.canWrite() ? this.ready.db.shift() : undefined);
  }

  private pump(): void {
    while (this.started && !this.closing && this.running.size < this.o.concurrency) {
      const id = this.next();
      if (id === undefined) return;
      const e = this.entries.get(id);
      if (!e) continue;
      const p: Promise<void> = this.run(e).finally(() => {
        this.running.delete(p);
        this.schedulePump();
      });
      this.running.add(p);
    }
  }

  /** The finish goes to the ledger too; if it cannot be written, the reconciler still learns it from this queue. */
  private async record(job: Job): Promise<void> {
    try {
      await this.o.ledger?.recordFinished([{ ...job }]);
    } catch (err) {
      this.log.warn("could not record a finished job", { job_id: job.id, error: errorText(err) });
    }
  }

  private async run(e: Entry): Promise<void> {
    const job = e.job;
    job.status = "running";
    job.started_at = new Date().toISOString();
    e.ctrl = new AbortController();
    const started = performance.now();
    try {
      const def = this.defs.get(job.type);
      if (!def) throw new Error(`no handler registered for job type "${job.type}" on this instance`);
      // A job whose finish was recorded before this process lost its queue runs no second time.
      const prior = await this.o.ledger?.finished(job.id);
      if (prior?.status === "failed") throw new PermanentJobError(prior.error_message ?? "failed before");
      if (!prior) await def.handler(structuredClone(e.payload), { jobId: job.id, type: job.type, attempt: job.retry_count + 1, signal: e.ctrl.signal });
      if (e.ctrl.signal.aborted) return;
      this.o.onRun?.(job.type, (performance.now() - started) / 1000, "completed");
      job.status = "completed";
      job.completed_at = new Date().toISOString();
      job.error_message = null;
      e.expiresAt = Date.now() + this.o.retentionCompletedMs;
      if (e.tracked) this.finishedMarks.add(job.id);
      this.completedTotal++;
      await this.record(job);
    } catch (err) {
      if (e.ctrl.signal.aborted) return;
      job.error_message = errorText(err);
      const decision = decideFailure(err, job.retry_count, job.max_retries, this.o);
      this.o.onRun?.(job.type, (performance.now() - started) / 1000, decision.kind === "fail" ? "failed" : decision.deferred ? "deferred" : "retry");
      if (decision.kind === "fail") {
        job.status = "failed";
        job.completed_at = new Date().toISOString();
        e.expiresAt = Date.now() + this.o.retentionFailedMs;
        if (e.tracked) this.finishedMarks.add(job.id);
        this.failed.add(job.id);
        this.log.warn("job failed", { job_id: job.id, type: job.type, retry_count: job.retry_count, error: job.error_message });
        await this.record(job);
      } else {
        job.retry_count = decision.retry;
        job.status = "retrying";
        const delay = decision.delay;
        this.log.info("job will be retried", { job_id: job.id, type: job.type, retry_count: job.retry_count, delay_ms: delay });
        e.timer = setTimeout(() => this.makeReady(e), delay);
      }
    }
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    clearInterval(this.recheck);
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    if (this.running.size === 0) return;
    const finished = await Promise.race([
      Promise.allSettled([...this.running]).then(() => true),
      Bun.sleep(this.o.shutdownGraceMs).then(() => false),
    ]);
    if (!finished) {
      this.log.warn("handlers still running at shutdown; aborting them (in-process jobs are lost)", { count: this.running.size });
      for (const e of this.entries.values()) if (e.job.status === "running") e.ctrl?.abort(new Error("the worker is shutting down"));
    }
  }
}
