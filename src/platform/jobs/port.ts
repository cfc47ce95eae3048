// The job queue as the features see it. Two adapters: Redis streams (redis-queue.ts: durable,
// cluster-wide) and an in-process queue (memory-queue.ts: the no-Redis mode, same API and retries, not durable).
import type { Db } from "../db/client.ts";

export type JobStatus = "pending" | "running" | "completed" | "failed" | "retrying";

/** The `Job` shape of the contract. */
export interface Job {
  id: string;
  type: string;
  status: JobStatus;
  created_at: string;
  started_at: string | null;
  /** When the job reached its final state (completed, or failed for good). */
  completed_at: string | null;
  error_message: string | null;
  retry_count: number;
  max_retries: number;
}

/**
 * Where a worker records the jobs that reached their final state, before it acknowledges them in the queue,
 * and asks before running one whether it has finished already. The outbox's SQLite implements it (outbox.ts):
 * a queue that forgets jobs (Redis restarted empty) then re-runs no finished job and loses no job's record.
 */
export interface JobLedger {
  recordFinished(jobs: readonly Job[]): Promise<void>;
  /** The recorded final state of a job, or null when it has none. */
  finished(id: string): Promise<Job | null>;
}

export interface EnqueueOptions {
  maxRetries?: number;
  /** The same key enqueued twice gives the same job id (while the job's record is retained). */
  idempotencyKey?: string;
  delayMs?: number;
  /**
   * The id to give a new job. The outbox relay uses it to keep a job's id when it has to enqueue it again
   * (after Redis lost it), so handlers that deduplicate by job id stay idempotent.
   */
  jobId?: string;
  /**
   * The outbox waits for this job (relay.ts); it runs on the primary, where the ledger is written. When it finishes (completed, or failed for good) the queue keeps
   * a "finished" marker that does not expire with the job's record, until forgetFinished() drops it: the
   * outbox never takes a finished job whose record has expired for a lost one.
   */
  tracked?: boolean;
}

export interface EnqueueRequest extends EnqueueOptions {
  type: string;
  payload: Record<string, unknown>;
}

export interface JobContext {
  jobId: string;
  type: string;
  /** 1 for the first run, 2 for the first retry, … */
  attempt: number;
  /** Aborted when the worker loses its hold on the job or shuts down past its grace period. */
  signal: AbortSignal;
}

export type JobHandler<P = Record<string, unknown>> = (payload: P, ctx: JobContext) => Promise<void>;

export interface JobDefinition<P = Record<string, unknown>> {
  type: string;
  /** True when the handler writes the database: it then runs only where writes are possible (the primary). */
  writesDb: boolean;
  handler: JobHandler<P>;
  /** Retries when the enqueuer gives none; the queue's default (JOB_MAX_RETRIES) otherwise. */
  maxRetries?: number;
}

export { backoffDelay, decideFailure, errorText, isPermanent, PermanentJobError, type FailureDecision } from "./failure.ts";

export interface QueueStats {
  /** Entries waiting to be delivered or being run, cluster-wide. */
  waiting: number;
  /** Waiting for a retry (or a delayed start). */
  delayed: number;
  /** Running on this instance right now. */
  running_here: number;
  /** Failed jobs still retained. */
  failed: number;
  /** Jobs completed since the queue's keys were created (Redis) or since start (in-process). */
  completed_total: number;
}

/** Jobs of one type by state. Running is cluster-wide here (not only this instance). */
export interface TypeCounts {
  type: string;
  waiting: number;
  delayed: number;
  running: number;
  failed: number;
}

/** At most this many entries of each state are read to count by type (the Redis adapter's bound). */
export const TYPE_SCAN_BOUND = 1_000;

export interface QueueTypeCounts {
  /** Sorted by type. */
  types: TypeCounts[];
  /**
   * False when a state held more than TYPE_SCAN_BOUND entries: its per-type counts then cover the oldest
   * TYPE_SCAN_BOUND of them (the totals in QueueStats stay exact).
   */
  complete: boolean;
}

export interface JobQueue {
  /** "redis" (durable) or "memory" (in-process, lost with the process). */
  readonly kind: "redis" | "memory";
  enqueue(type: string, payload: Record<string, unknown>, opts?: EnqueueOptions): Promise<string>;
  /** Enqueues several jobs in one round trip; ids in the order given. */
  enqueueMany(jobs: readonly EnqueueRequest[]): Promise<string[]>;
  getJob(id: string): Promise<Job | null>;
  getJobs(ids: readonly string[]): Promise<Record<string, Job | null>>;
  /** The most recently failed jobs, newest first (kept for the failed retention). */
  listFailed(limit: number): Promise<Job[]>;
  /** Of these tracked jobs, the ones that have finished, whether or not their records are still retained. */
  finishedTracked(ids: readonly string[]): Promise<Set<string>>;
  /** Drops the finished markers of tracked jobs (once their outbox rows are deleted). */
  forgetFinished(ids: readonly string[]): Promise<void>;
  stats(): Promise<QueueStats>;
  /** Waiting, delayed, running and failed jobs per type, read when asked (nothing is kept on the enqueue path). */
  countsByType(): Promise<QueueTypeCounts>;
  /**
   * Runs a retained failed job again, as a new job of the same type and payload; the failed one is dropped.
   * Returns the new job's id, or null when `id` is not a retained failed job (already retried or discarded).
   */
  retryFailed(id: string): Promise<string | null>;
  /** Drops a retained failed job; false when `id` is not one. */
  discardFailed(id: string): Promise<boolean>;
  register(def: JobDefinition<any>): void;
  /** The registered definition of a job type, if any. */
  definition(type: string): JobDefinition<any> | undefined;
  /** Starts consuming (jobs whose `writesDb` is true only when `canWrite()`). */
  start(opts: { canWrite: () => boolean }): void;
  /** Stops taking jobs, lets running ones finish (bounded), leaves the rest for other instances. */
  close(): Promise<void>;
}

export type { Db };
