import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

const now = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

export const users = sqliteTable("users", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  /** Stored lower-cased; unique. */
  email: text("email").notNull().unique(),
  passwordHash: text("password_hash").notNull(),
  fullName: text("full_name").notNull(),
  isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
  isAdmin: integer("is_admin", { mode: "boolean" }).notNull().default(false),
  createdAt: text("created_at").notNull().default(now),
  updatedAt: text("updated_at").notNull().default(now),
  /** Last login or write; the cache warms the most recently active users first. */
  lastActiveAt: text("last_active_at").notNull().default(now),
}, (t) => [index("users_last_active_idx").on(t.lastActiveAt)]);

export const posts = sqliteTable(
  "posts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    content: text("content").notNull(),
    createdAt: text("created_at").notNull().default(now),
  },
  (t) => [index("posts_user_recent_idx").on(t.userId, t.createdAt, t.id)],
);

/** One row per user: a JSON object of at most 50 keys with string, number or boolean values. */
export const preferences = sqliteTable("preferences", {
  userId: integer("user_id").primaryKey().references(() => users.id, { onDelete: "cascade" }),
  data: text("data", { mode: "json" }).$type<Record<string, string | number | boolean>>().notNull(),
  updatedAt: text("updated_at").notNull().default(now),
  /**
   * When each key was last written (epoch ms; a removed key keeps its time): a bulk job accepted before a
   * user's own write of a key leaves that key alone, whenever and however often it runs.
   */
  keyWrittenAt: text("key_written_at", { mode: "json" }).$type<Record<string, number>>().notNull().default(sql`'{}'`),
});

/** One row per login; the token carries its id. Expired rows are removed by the cleanup job. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: integer("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull().default(now),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("sessions_expires_idx").on(t.expiresAt), index("sessions_user_idx").on(t.userId)],
);

/**
 * Row counts kept up to date by triggers (see the migration that creates them), so a page's `total` is one
 * lookup instead of a count of the whole table.
 */
export const tableCounts = sqliteTable("table_counts", {
  name: text("name").primaryKey(),
  n: integer("n").notNull(),
});

/**
 * Ids up to the highest user id that belong to no user (a trigger records each deletion): with them, the
 * first id of page N of the users list is computed rather than found by skipping rows.
 */
export const userIdGaps = sqliteTable("user_id_gaps", {
  id: integer("id").primaryKey(),
});
