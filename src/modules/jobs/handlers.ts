// The jobs feature's own job type, the session cleanup (a delete: idempotent under redelivery), and the batched
// cleanup its schedule shares. The other job types are their features' (users/jobs.ts, preferences/jobs.ts).
import type { Database } from "../../platform/db/client.ts";
import type { JobDefinition } from "../../platform/jobs/port.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import { q } from "../../platform/db/tx.ts";
import { jobsRepo } from "./repository.ts";
import { JOB_TYPES } from "./types.ts";

/** Rows per delete in the session cleanup: short write transactions, and a point to stop at between them. */
export const SESSION_CLEANUP_BATCH = 500;

/**
 * Deletes expired sessions in batches, shared by the job and the cron schedule. Checks `signal` before each
 * batch: a run that lost its lease (or its job hold) stops there and throws the signal's reason; what it
 * deleted stays deleted, and the next run deletes the rest.
 */
export async function cleanupExpiredSessions(
  deps: { database: Database; logger: Logger },
  opts: { signal?: AbortSignal; batchSize?: number } = {},
): Promise<number> {
  const batchSize = opts.batchSize ?? SESSION_CLEANUP_BATCH;
  const now = new Date().toISOString();
  let deleted = 0;
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      const n = await deps.database.write((tx) => q(jobsRepo.deleteExpiredSessions(tx, now, batchSize)));
      deleted += n;
      deps.logger.debug("expired sessions batch removed", { count: n });
      if (n < batchSize) break;
    }
  } finally {
    deps.logger.info("expired sessions removed", { count: deleted, complete: !opts.signal?.aborted });
  }
  return deleted;
}

/** What the cleanup needs. */
export interface JobHandlersDeps {
  database: Database;
  logger: Logger;
}

export function jobDefinitions(deps: JobHandlersDeps): JobDefinition<any>[] {
  const cleanup: JobDefinition<Record<string, never>> = {
    type: JOB_TYPES.cleanupSessions,
    writesDb: true,
    async handler(_p, ctx) {
      await cleanupExpiredSessions(deps, { signal: ctx.signal });
    },
  };
  return [cleanup];
}
