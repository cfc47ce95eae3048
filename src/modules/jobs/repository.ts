// SQL of the background jobs' side effects. Every insert is keyed by job id, so a redelivered job adds nothing.
import { inArray, lt } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { analyticsEvents, auditLog, sessions } from "../../platform/db/schema/index.ts";

export const jobsRepo = {
  async recordAnalytics(db: Db, v: { jobId: string; userId: number | null; event: string; properties: Record<string, unknown> }) {
    await db.insert(analyticsEvents).values(v).onConflictDoNothing({ target: analyticsEvents.jobId });
  },
  async recordAudit(db: Db, v: { jobId: string; userId: number | null; action: string; details: Record<string, unknown> }) {
    await db.insert(auditLog).values(v).onConflictDoNothing({ target: auditLog.jobId });
  },
  /** Deletes at most `limit` sessions that expired before `now` (oldest first); returns how many. */
  async deleteExpiredSessions(db: Db, now: string, limit: number): Promise<number> {
    const batch = db.select({ id: sessions.id }).from(sessions).where(lt(sessions.expiresAt, now)).orderBy(sessions.expiresAt).limit(limit);
    const rows = await db.delete(sessions).where(inArray(sessions.id, batch)).returning({ id: sessions.id });
    return rows.length;
  },
};
