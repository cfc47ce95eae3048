// SQL for preferences: one JSON row per user, with the time each key was last written. Each call returns its
// result directly on bun:sqlite and a promise on libSQL: `await` it, or `yield* q(...)` inside a write body.
import { eq, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, type Step } from "../../platform/db/step.ts";
import { statement } from "../../platform/db/statement.ts";
import { preferences } from "../../platform/db/schema/index.ts";
import type { Preferences } from "./model.ts";

const p = sql.placeholder;

// A lookup by the primary key carries no limit(1) (see statement()).
const byUser = eq(preferences.userId, p("userId"));
/** The value the conflicting insert brought for a column. */
const excluded = (c: SQLiteColumn) => sql`excluded.${sql.identifier(c.name)}`;

/** The statements, declared once for both drivers (see statement.ts); exported for the tests that compare drivers. */
export const preferenceStatements = preparedFor((db) => ({
  get: statement(db, db.select({ data: preferences.data }).from(preferences).where(byUser)),
  getStamped: statement(db, db.select({ data: preferences.data, keyWrittenAt: preferences.keyWrittenAt }).from(preferences).where(byUser)),
  put: statement(
    db,
    db
      .insert(preferences)
      .values({ userId: p("userId"), data: p("data"), keyWrittenAt: p("keyWrittenAt"), updatedAt: p("now") })
      .onConflictDoUpdate({
        target: preferences.userId,
        set: { data: excluded(preferences.data), keyWrittenAt: excluded(preferences.keyWrittenAt), updatedAt: excluded(preferences.updatedAt) },
      }),
  ),
}));

export const preferencesRepo = {
  get(db: Db, userId: number): Step<Preferences> {
    return mapStep(preferenceStatements(db).get.get({ userId }), (row) => row?.data ?? {});
  },
  /** The preferences with the time each key was last written (see the schema). */
  getStamped(db: Db, userId: number): Step<{ data: Preferences; keyWrittenAt: Record<string, number> }> {
    return mapStep(preferenceStatements(db).getStamped.get({ userId }), (row) => ({ data: row?.data ?? {}, keyWrittenAt: row?.keyWrittenAt ?? {} }));
  },
  put(db: Db, userId: number, data: Preferences, keyWrittenAt: Record<string, number> = {}): Step<unknown> {
    return preferenceStatements(db).put.run({ userId, data, keyWrittenAt, now: new Date().toISOString() });
  },
};
