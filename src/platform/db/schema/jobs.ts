// Tables written by background jobs: the transactional outbox and the side effects of registration.
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const now = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

/** Jobs born from a database write, committed in the same transaction and relayed to the queue. */
export const outbox = sqliteTable(
  "outbox",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    jobType: text("job_type").notNull(),
    payload: text("payload", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    /** Becomes the queue's idempotency key, so a relay repeated after a crash enqueues nothing twice. */
    idempotencyKey: text("idempotency_key").notNull().unique(),
    maxRetries: integer("max_retries"),
    createdAt: text("created_at").notNull().default(now),
    relayedAt: text("relayed_at"),
    jobId: text("job_id"),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
  },
  (t) => [index("outbox_pending_idx").on(t.relayedAt, t.id)],
);

/**
 * Jobs born from the outbox that have finished (completed, or failed for good), written by the worker before
 * it acknowledges the job in the queue: the queue forgetting a job (Redis restarted empty) neither re-runs a
 * finished job nor makes it unknown to GET /jobs. Kept for the queue's retention of finished jobs.
 */
export const jobResults = sqliteTable(
  "job_results",
  {
    jobId: text("job_id").primaryKey(),
    jobType: text("job_type").notNull(),
    status: text("status").$type<"completed" | "failed">().notNull(),
    createdAt: text("created_at").notNull(),
    startedAt: text("started_at"),
    completedAt: text("completed_at").notNull(),
    errorMessage: text("error_message"),
    retryCount: integer("retry_count").notNull().default(0),
    maxRetries: integer("max_retries").notNull().default(0),
    /** How many times the relay tried to hand the job to the queue (1 when nothing went wrong). */
    relayAttempts: integer("relay_attempts").notNull().default(0),
  },
  (t) => [index("job_results_completed_idx").on(t.completedAt)],
);

/** The default mailer writes here; job_id makes a redelivered job a no-op. */
export const emailOutbox = sqliteTable("email_outbox", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  jobId: text("job_id").notNull().unique(),
  userId: integer("user_id"),
  toEmail: text("to_email").notNull(),
  subject: text("subject").notNull(),
  body: text("body").notNull(),
  createdAt: text("created_at").notNull().default(now),
});

export const analyticsEvents = sqliteTable(
  "analytics_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    jobId: text("job_id").notNull().unique(),
    userId: integer("user_id"),
    event: text("event").notNull(),
    properties: text("properties", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("analytics_user_idx").on(t.userId)],
);

export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    jobId: text("job_id").notNull().unique(),
    userId: integer("user_id"),
    action: text("action").notNull(),
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("audit_user_idx").on(t.userId)],
);
