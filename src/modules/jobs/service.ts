// Job look-ups: the queue first; then the database, which knows every job born from the outbox: finished
// ones (job_results) and ones still waiting, relayed or not (their id is known to the client already, e.g.
// from the bulk API). So such a job answers even when Redis lost it. A queue that cannot answer makes only
// the ids the database cannot vouch for a 503.
import type { Database } from "../../platform/db/client.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import { notFound, serviceUnavailable } from "../../platform/http/errors.ts";
import { outboxRepo, type OutboxRow } from "../../platform/jobs/outbox.ts";
import type { Job, JobQueue } from "../../platform/jobs/port.ts";
import { withTimeout } from "../../platform/redis.ts";

const QUEUE_TIMEOUT_MS = 2_000;

/** What the job look-ups need. */
export interface JobsDeps {
  queue: Pick<JobQueue, "getJobs" | "definition">;
  database: Database;
  logger: Logger;
  /** The retries of a job type with none of its own (a job still in the outbox is answered with it). */
  config: { JOB_MAX_RETRIES: number };
}

function pendingFromOutbox(deps: JobsDeps, row: OutboxRow): Job {
  return {
    id: row.jobId!,
    type: row.jobType,
    status: "pending",
    created_at: new Date(row.createdAt).toISOString(),
    started_at: null,
    completed_at: null,
    error_message: null,
    retry_count: 0,
    max_retries: row.maxRetries ?? deps.queue.definition(row.jobType)?.maxRetries ?? deps.config.JOB_MAX_RETRIES,
  };
}

export async function findJobs(deps: JobsDeps, ids: readonly string[]): Promise<Record<string, Job | null>> {
  const unique = [...new Set(ids)];
  let found: Record<string, Job | null> = {};
  let queueDown: unknown = null;
  try {
    found = await withTimeout(deps.queue.getJobs(unique), QUEUE_TIMEOUT_MS, "job look-up");
  } catch (err) {
    queueDown = err;
  }
  const { db } = deps.database;
  let missing = unique.filter((id) => !found[id]);
  if (missing.length > 0) for (const job of await outboxRepo.results(db, missing)) found[job.id] = job;
  missing = missing.filter((id) => !found[id]);
  if (missing.length > 0) {
    for (const row of await outboxRepo.byJobIds(db, missing)) {
      // A relayed job the queue cannot be asked about may be running: only the queue could say.
      if (queueDown && row.relayedAt !== null) continue;
      found[row.jobId!] = pendingFromOutbox(deps, row);
    }
  }
  if (queueDown && unique.some((id) => !found[id])) {
    deps.logger.warn("job look-up failed: queue unreachable", { error: (queueDown as Error).message });
    throw serviceUnavailable("The job queue is unreachable; retry later");
  }
  return Object.fromEntries(unique.map((id) => [id, found[id] ?? null]));
}

export async function getJob(deps: JobsDeps, id: string): Promise<Job> {
  const job = (await findJobs(deps, [id]))[id];
  if (!job) throw notFound(`Job ${id} not found`);
  return job;
}

export async function statusOf(deps: JobsDeps, ids: readonly string[]): Promise<Record<string, Job | { status: "not_found" }>> {
  const jobs = await findJobs(deps, ids);
  return Object.fromEntries(Object.entries(jobs).map(([id, job]) => [id, job ?? { status: "not_found" as const }]));
}
