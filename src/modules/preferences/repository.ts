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

// The cache-missing read and the merge's statements straight from bun:sqlite (null on libSQL, which uses the
// statements above): Drizzle's parameter filling and JSON-column mapping cost as much as the statements do on a
// write this small. The JSON columns are parsed and written here as Drizzle's json mode does (JSON text).
const direct = preparedFor((db) => {
  const c = sqliteOf(db);
  if (!c) return null;
  return {
    preferences: c.prepare<{ data: string }, [number]>("SELECT data FROM preferences WHERE user_id = ? LIMIT 1"),
    stamped: c.prepare<{ data: string; keyWrittenAt: string }, [number]>(
      "SELECT data, key_written_at AS keyWrittenAt FROM preferences WHERE user_id = ? LIMIT 1",
    ),
    put: c.prepare<never, [number, string, string, string]>(
      "INSERT INTO preferences (user_id, data, key_written_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, key_written_at = excluded.key_written_at, updated_at = excluded.updated_at",
    ),
  };
});

export const preferencesRepo = {
  get(db: Db, userId: number): Step<Preferences> {
    const d = direct(db);
    if (d) {
      const row = d.preferences.get(userId);
      return row === null ? {} : (JSON.parse(row.data) as Preferences);
    }
    return mapStep(preferenceStatements(db).get.get({ userId }), (row) => row?.data ?? {});
  },
  /** The preferences with the time each key was last written (see the schema). */
  getStamped(db: Db, userId: number): Step<{ data: Preferences; keyWrittenAt: Record<string, number> }> {
    const d = direct(db);
    if (d) {
      const row = d.stamped.get(userId);
      return row === null ? { data: {}, keyWrittenAt: {} } : { data: JSON.parse(row.data) as Preferences, keyWrittenAt: JSON.parse(row.keyWrittenAt) as Record<string, number> };
    }
    return mapStep(preferenceStatements(db).getStamped.get({ userId }), (row) => ({ data: row?.data ?? {}, keyWrittenAt: row?.keyWrittenAt ?? {} }));
  },
  put(db: Db, userId: number, data: Preferences, keyWrittenAt: Record<string, number> = {}): Step<unknown> {
    const now = new Date().toISOString();
    const d = direct(db);
    if (d) return d.put.run(userId, JSON.stringify(data), JSON.stringify(keyWrittenAt), now);
    return preferenceStatements(db).put.run({ userId, data, keyWrittenAt, now });
  },
};
