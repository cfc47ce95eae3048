// SQL of the background jobs' side effects. Every insert is keyed by job id, so a redelivered job adds nothing.
import { lt } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { analyticsEvents, auditLog, sessions } from "../../platform/db/schema/index.ts";

export const jobsRepo = {
  async recordAnalytics(db: Db, v: { jobId: string; userId: number | null; event: string; properties: Record<string, unknown> }) {
    await db.insert(analyticsEvents).values(v).onConflictDoNothing({ target: analyticsEvents.jobId });
  },
  async recordAudit(db: Db, v: { jobId: string; userId: number | null; action: string; details: Record<string, unknown> }) {
    await db.insert(auditLog).values(v).onConflictDoNothing({ target: auditLog.jobId });
  },
  /** Deletes sessions that expired before `now`; returns how many. */
  async deleteExpiredSessions(db: Db, now: string): Promise<number> {
    const rows = await db.delete(sessions).where(lt(sessions.expiresAt, now)).returning({ id: sessions.id });
    return rows.length;
  },
};
