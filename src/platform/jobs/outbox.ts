// The transactional outbox: jobs born from a database write are inserted here in the same transaction
// as the write, then relayed to the queue (see relay.ts). A crash or a Redis outage after the commit
// loses nothing: the rows wait until the relay gets them through.
import { and, asc, eq, gt, inArray, isNotNull, isNull, lt, sql } from "drizzle-orm";
import type { Database, Db } from "../db/client.ts";
import { jobResults, outbox } from "../db/schema/index.ts";
import { preparedFor, type Step } from "../db/step.ts";
import { q } from "../db/tx.ts";
import type { Job, JobLedger } from "./port.ts";

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
// Polled every second by the relay: built once per connection (building it each time cost more than running it).
const pendingStatement = preparedFor((db) =>
  db.select().from(outbox).where(isNull(outbox.relayedAt)).orderBy(asc(outbox.id)).limit(p("limit")).prepare(),
);

export const outboxRepo = {
  /** Committed rows not yet handed to the queue, oldest first. */
  async pending(db: Db, limit: number): Promise<OutboxRow[]> {
    return pendingStatement(db).all({ limit });
  },
  /** One statement: the relayed mark and the job id of each row. */
  markRelayed(db: Db, rows: readonly { id: number; jobId: string }[], at: string): Step<unknown> {
    if (rows.length === 0) return undefined;
    const jobIdCase = sql.join(
      [sql`case ${outbox.id}`, ...rows.map((r) => sql`when ${r.id} then ${r.jobId}`), sql`end`],
      sql` `,
    );
    return db
      .update(outbox)
      .set({ relayedAt: at, jobId: jobIdCase, attempts: sql`${outbox.attempts} + 1`, lastError: null })
      .where(inArray(outbox.id, rows.map((r) => r.id)))
      .run();
  },
  markFailedAttempt(db: Db, ids: readonly number[], error: string): Step<unknown> {
    return db
      .update(outbox)
      .set({ attempts: sql`${outbox.attempts} + 1`, lastError: error })
      .where(inArray(outbox.id, [...ids]))
      .run();
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
  delete(db: Db, ids: readonly number[]): Step<unknown> {
    return ids.length > 0 ? db.delete(outbox).where(inArray(outbox.id, [...ids])).run() : undefined;
  },
  /** Hands rows back to the relay (their job id is kept, so the job keeps its id). */
  unrelay(db: Db, ids: readonly number[]): Step<unknown> {
    return ids.length > 0 ? db.update(outbox).set({ relayedAt: null }).where(inArray(outbox.id, [...ids])).run() : undefined;
  },
  /** Rows of these jobs, relayed or not (a job's row is deleted once its result is recorded). */
  async byJobIds(db: Db, jobIds: readonly string[]): Promise<OutboxRow[]> {
    if (jobIds.length === 0) return [];
    return db.select().from(outbox).where(inArray(outbox.jobId, [...jobIds]));
  },
  /**
   * Records the final state of the outbox's jobs among `jobs` and deletes their rows: result first, so a
   * crash in between leaves a row whose result exists (the reconciler deletes it), never a finished job
   * with neither. A write body: `database.write((tx) => outboxRepo.finish(tx, jobs))`.
   */
  *finish(db: Db, jobs: readonly Job[]): Generator<unknown, number, unknown> {
    if (jobs.length === 0) return 0;
    const rows = yield* q(db.select().from(outbox).where(inArray(outbox.jobId, jobs.map((j) => j.id))).all());
    if (rows.length === 0) return 0;
    const byId = new Map(jobs.map((j) => [j.id, j]));
    yield* q(db
      .insert(jobResults)
      .values(
        rows.map((r) => {
          const j = byId.get(r.jobId!)!;
          return {
            jobId: j.id,
            jobType: r.jobType,
            status: j.status === "failed" ? ("failed" as const) : ("completed" as const),
            createdAt: r.createdAt,
            startedAt: j.started_at,
            completedAt: j.completed_at ?? new Date().toISOString(),
            errorMessage: j.error_message,
            retryCount: j.retry_count,
            maxRetries: j.max_retries,
            relayAttempts: r.attempts,
          };
        }),
      )
      .onConflictDoNothing({ target: jobResults.jobId })
      .run());
    yield* q(outboxRepo.delete(db, rows.map((r) => r.id)));
    return rows.length;
  },
  async results(db: Db, jobIds: readonly string[]): Promise<Job[]> {
    if (jobIds.length === 0) return [];
    const rows = await db.select().from(jobResults).where(inArray(jobResults.jobId, [...jobIds]));
    return rows.map((r) => ({
      id: r.jobId,
      type: r.jobType,
      status: r.status,
      created_at: r.createdAt,
      started_at: r.startedAt,
      completed_at: r.completedAt,
      error_message: r.errorMessage,
      retry_count: r.retryCount,
      max_retries: r.maxRetries,
    }));
  },
  /** Results past the queue's retention of their kind go, as the queue's records do. A write body. */
  *pruneResults(db: Db, retention: { completedMs: number; failedMs: number }, now = Date.now()): Generator<unknown, void, unknown> {
    const before = (ms: number) => new Date(now - ms).toISOString();
    yield* q(db.delete(jobResults).where(and(eq(jobResults.status, "completed"), lt(jobResults.completedAt, before(retention.completedMs)))).run());
    yield* q(db.delete(jobResults).where(and(eq(jobResults.status, "failed"), lt(jobResults.completedAt, before(retention.failedMs)))).run());
  },
};

/**
 * The queue's ledger (port.ts) on the outbox's database. Only the primary writes: the outbox's jobs are placed
 * where it runs them (EnqueueOptions.tracked), and any other job has no row to record.
 */
export function outboxLedger(database: Database, canWrite: () => boolean): JobLedger {
  return {
    async recordFinished(jobs) {
      if (jobs.length > 0 && canWrite()) await database.write((tx) => outboxRepo.finish(tx, jobs));
    },
    async finished(id) {
      const [job] = await outboxRepo.results(database.db, [id]);
      return job ?? null;
    },
  };
}
