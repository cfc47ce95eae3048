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
