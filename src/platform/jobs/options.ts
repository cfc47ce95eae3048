// The queue's knobs; the composition root fills them from the configuration (src/main/options.ts), tests pass their own.
import type { Logger } from "../observability/logger.ts";
import type { JobRunOutcome } from "../observability/ops-metrics.ts";
import type { JobLedger } from "./port.ts";

export interface QueueOptions {
  /** Handlers running at once on this instance (JOB_CONCURRENCY). */
  concurrency: number;
  /** A delivery not acknowledged nor extended for this long is given to another worker. */
  visibilityTimeoutMs: number;
  maxRetries: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  retentionCompletedMs: number;
  retentionFailedMs: number;
  /** How long close() waits for running handlers before aborting them and handing their jobs back. */
  shutdownGraceMs: number;
  /** This worker's name in the consumer group; unique per process. */
  consumerName: string;
  logger: Logger;
  /** Told of every handler run this worker makes (the job metrics). */
  onRun?: (type: string, seconds: number, outcome: JobRunOutcome) => void;
  /** Records finished jobs where they outlive the queue (the outbox's SQLite); none in unit tests of the queue. */
  ledger?: JobLedger;
}
