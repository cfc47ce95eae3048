// Administrative operations: bulk preference updates (one job per user) and what the background machinery holds.
import type { Database } from "../../platform/db/client.ts";
import type { OutboxKick } from "../../platform/jobs/relay.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import { unprocessable } from "../../platform/http/errors.ts";
import { writeOutbox } from "../../platform/jobs/outbox.ts";
import { JOB_TYPES, type PreferencesPayload } from "../jobs/types.ts";
import { adminRepo } from "./repository.ts";

const OUTBOX_CHUNK = 200;

/** What the bulk preference update needs. */
export interface AdminDeps {
  database: Database;
  /** Told once the jobs are in the outbox. */
  outbox: OutboxKick;
  logger: Logger;
}

/**
 * Queues an update_user_preferences job per user. The jobs are written to the outbox in one transaction
 * (their ids chosen here, so the answer can name them) and relayed to the queue: accepted means durable,
 * even while Redis is down.
 */
export async function bulkPreferences(
  deps: AdminDeps,
  userIds: readonly number[],
  updates: PreferencesPayload["preference_updates"],
): Promise<{ jobs: Record<string, string> }> {
  if (Object.keys(updates).length === 0) {
    throw unprocessable([{ field: "preference_updates", message: "must name at least one preference" }]);
  }
  const ids = [...new Set(userIds)];
  const known = await adminRepo.existingUserIds(deps.database.db, ids);
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 20).join(", ") + (unknown.length > 20 ? ", …" : "");
    throw unprocessable([{ field: "user_ids", message: `no such users: ${shown}` }]);
  }
  const planned = ids.map((id) => ({ userId: id, jobId: Bun.randomUUIDv7() }));
  const acceptedAt = Date.now();
  await deps.database.write(function* (tx) {
    for (let i = 0; i < planned.length; i += OUTBOX_CHUNK) {
      yield* writeOutbox(
        tx,
        planned.slice(i, i + OUTBOX_CHUNK).map((p) => ({
          type: JOB_TYPES.updatePreferences,
          payload: { user_id: p.userId, preference_updates: updates, accepted_at: acceptedAt } satisfies PreferencesPayload,
          idempotencyKey: `${JOB_TYPES.updatePreferences}:${p.jobId}`,
          jobId: p.jobId,
        })),
      );
    }
  });
  deps.outbox.kick();
  deps.logger.info("bulk preference update queued", { users: planned.length });
  return { jobs: Object.fromEntries(planned.map((p) => [String(p.userId), p.jobId])) };
}
