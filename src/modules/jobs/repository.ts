// SQL of the jobs feature: the session cleanup.
import { inArray, lt } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, type Step } from "../../platform/db/step.ts";
import { sessions } from "../../platform/db/schema/index.ts";

// Writes return a Step and run inside `database.write` (see platform/db/tx.ts).
export const jobsRepo = {
  /** Deletes at most `limit` sessions that expired before `now` (oldest first); returns how many. */
  deleteExpiredSessions(db: Db, now: string, limit: number): Step<number> {
    const batch = db.select({ id: sessions.id }).from(sessions).where(lt(sessions.expiresAt, now)).orderBy(sessions.expiresAt).limit(limit);
    return mapStep(db.delete(sessions).where(inArray(sessions.id, batch)).returning({ id: sessions.id }).all(), (rows) => rows.length);
  },
};
