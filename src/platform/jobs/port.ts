// The job queue as the features see it. Two adapters: Redis streams (durable, cluster-wide) and an
// in-process queue for the no-Redis mode (same API and retries, not durable).
import type { Db } from "../db/client.ts";

export type JobStatus = "pending" | "running" | "completed" | "failed" | "retrying";

/** The `Job` shape of the contract. */
export interface Job {
  id: string;
  type: string;
  status: JobStatus;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  error_message: string | null;
  retry_count: number;
  max_retries: number;
}

export interface EnqueueOptions {
  maxRetries?: number;
  /** The same key enqueued twice gives the same job id. */
  idempotencyKey?: string;
  delayMs?: number;
}

export interface JobContext {
  jobId: string;
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
}

export interface JobQueue {
  enqueue(type: string, payload: Record<string, unknown>, opts?: EnqueueOptions): Promise<string>;
  getJob(id: string): Promise<Job | null>;
  getJobs(ids: readonly string[]): Promise<Record<string, Job | null>>;
  register(def: JobDefinition<any>): void;
  /** Starts consuming (jobs whose `writesDb` is true only when `canWrite()`). */
  start(opts: { canWrite: () => boolean }): void;
  /** Stops taking jobs, lets running ones finish (bounded), leaves the rest for other instances. */
  close(): Promise<void>;
}

export type { Db };
