// SQL for preferences: one JSON row per user, with the time each key was last written. Each call returns its
// result directly on bun:sqlite and a promise on libSQL: `await` it, or `yield* q(...)` inside a write body.
import { eq, sql } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, sqliteOf, type Step } from "../../platform/db/step.ts";
import { preferences } from "../../platform/db/schema/index.ts";
import type { Preferences } from "./model.ts";

const p = sql.placeholder;

const preferenceStatements = preparedFor((db) => ({
  get: db.select({ data: preferences.data }).from(preferences).where(eq(preferences.userId, p("userId"))).limit(1).prepare(),
  getStamped: db
    .select({ data: preferences.data, keyWrittenAt: preferences.keyWrittenAt })
    .from(preferences)
    .where(eq(preferences.userId, p("userId")))
    .limit(1)
    .prepare(),
  put: db
    .insert(preferences)
    .values({ userId: p("userId"), data: p("data"), keyWrittenAt: p("keyWrittenAt"), updatedAt: p("now") })
    .onConflictDoUpdate({
      target: preferences.userId,
      set: { data: sql`excluded.data`, keyWrittenAt: sql`excluded.key_written_at`, updatedAt: sql`excluded.updated_at` },
    })
    .prepare(),
}));

// The cache-missing read straight from bun:sqlite (null on libSQL, which uses the statement above).
const directReads = preparedFor((db) => {
  const c = sqliteOf(db);
  if (!c) return null;
  return { preferences: c.prepare<{ data: string }, [number]>("SELECT data FROM preferences WHERE user_id = ? LIMIT 1") };
});

export const preferencesRepo = {
  get(db: Db, userId: number): Step<Preferences> {
    const direct = directReads(db);
    if (direct) {
      const row = direct.preferences.get(userId);
      return row === null ? {} : (JSON.parse(row.data) as Preferences);
    }
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
