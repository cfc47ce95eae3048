// The queue's knobs, read from the configuration once; tests pass their own.
import type { Config } from "../../config.ts";
import type { Logger } from "../observability/logger.ts";
import type { JobRunOutcome } from "../observability/ops-metrics.ts";
import { backgroundGraceMs } from "../lifecycle/shutdown.ts";
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

export function queueOptionsFromConfig(config: Config, logger: Logger, onRun?: QueueOptions["onRun"]): QueueOptions {
  return {
    onRun,
    concurrency: config.JOB_CONCURRENCY,
    visibilityTimeoutMs: config.JOB_VISIBILITY_TIMEOUT_MS,
    maxRetries: config.JOB_MAX_RETRIES,
    backoffBaseMs: config.JOB_BACKOFF_BASE_MS,
    backoffCapMs: config.JOB_BACKOFF_CAP_MS,
    retentionCompletedMs: config.JOB_RETENTION_COMPLETED_SECONDS * 1000,
    retentionFailedMs: config.JOB_RETENTION_FAILED_SECONDS * 1000,
    shutdownGraceMs: backgroundGraceMs(config.SHUTDOWN_TIMEOUT_MS),
    consumerName: `${config.INSTANCE_ID}:${crypto.randomUUID().slice(0, 8)}`,
    logger,
  };
}
