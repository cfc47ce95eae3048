// The transactional outbox: jobs born from a database write are inserted here in the same transaction
// as the write, then relayed to the queue (see relay.ts). A crash or a Redis outage after the commit
// loses nothing: the rows wait until the relay gets them through.
import { and, asc, gt, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { outbox } from "../db/schema/index.ts";
import { preparedFor } from "../db/step.ts";
import { q } from "../db/tx.ts";

export interface OutboxJob {
  type: string;
  payload: Record<string, unknown>;
  /** Unique across the outbox; becomes the queue's idempotency key. */
  idempotencyKey: string;
  maxRetries?: number;
  /** The job id to use, when the caller must know it before the relay runs (the bulk API answers with it). */
  jobId?: string;
}

const p = sql.placeholder;
const insertStatement = preparedFor((db) =>
  db
    .insert(outbox)
    .values({
      jobType: p("jobType"),
      payload: p("payload"),
      idempotencyKey: p("idempotencyKey"),
      maxRetries: p("maxRetries"),
      jobId: p("jobId"),
      createdAt: p("createdAt"),
    })
    .prepare(),
);

/** Inserts the jobs inside the caller's write body: `yield* writeOutbox(tx, jobs)`. */
export function* writeOutbox(tx: Db, jobs: readonly OutboxJob[]): Generator<unknown, void, unknown> {
  const insert = insertStatement(tx);
  const createdAt = new Date().toISOString();
  for (const j of jobs) {
    yield* q(
      insert.run({
        jobType: j.type,
        payload: j.payload,
        idempotencyKey: j.idempotencyKey,
        maxRetries: j.maxRetries ?? null,
        jobId: j.jobId ?? null,
        createdAt,
      }),
    );
  }
}

export type OutboxRow = typeof outbox.$inferSelect;

/** The outbox's SQL, used by the relay and by job look-ups. */
export const outboxRepo = {
  /** Committed rows not yet handed to the queue, oldest first. */
  async pending(db: Db, limit: number): Promise<OutboxRow[]> {
    return db.select().from(outbox).where(isNull(outbox.relayedAt)).orderBy(asc(outbox.id)).limit(limit);
  },
  /** One statement (no transaction held across awaits, which would stall other writers of this process). */
  async markRelayed(db: Db, rows: readonly { id: number; jobId: string }[], at: string): Promise<void> {
    if (rows.length === 0) return;
    const jobIdCase = sql.join(
      [sql`case ${outbox.id}`, ...rows.map((r) => sql`when ${r.id} then ${r.jobId}`), sql`end`],
      sql` `,
    );
    await db
      .update(outbox)
      .set({ relayedAt: at, jobId: jobIdCase, attempts: sql`${outbox.attempts} + 1`, lastError: null })
      .where(inArray(outbox.id, rows.map((r) => r.id)));
  },
  async markFailedAttempt(db: Db, ids: readonly number[], error: string): Promise<void> {
    await db
      .update(outbox)
      .set({ attempts: sql`${outbox.attempts} + 1`, lastError: error })
      .where(inArray(outbox.id, [...ids]));
  },
  /** Relayed rows after `afterId`, for the reconciler's sweep. */
  async relayed(db: Db, afterId: number, limit: number): Promise<{ id: number; jobId: string | null }[]> {
    return db
      .select({ id: outbox.id, jobId: outbox.jobId })
      .from(outbox)
      .where(and(isNotNull(outbox.relayedAt), gt(outbox.id, afterId)))
      .orderBy(asc(outbox.id))
      .limit(limit);
  },
  async delete(db: Db, ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await db.delete(outbox).where(inArray(outbox.id, [...ids]));
  },
  /** Hands rows back to the relay (their job id is kept, so the job keeps its id). */
  async unrelay(db: Db, ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await db.update(outbox).set({ relayedAt: null }).where(inArray(outbox.id, [...ids]));
  },
  /** Rows whose job has an id but is not in the queue yet (written with a job id, not relayed). */
  async unrelayedByJobIds(db: Db, jobIds: readonly string[]): Promise<OutboxRow[]> {
    if (jobIds.length === 0) return [];
    return db
      .select()
      .from(outbox)
      .where(and(isNull(outbox.relayedAt), inArray(outbox.jobId, [...jobIds])));
  },
};
