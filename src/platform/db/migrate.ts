import { migrate as migrateBun } from "drizzle-orm/bun-sqlite/migrator";
import { migrate as migrateLibsql } from "drizzle-orm/libsql/migrator";
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import type { LibSQLDatabase } from "drizzle-orm/libsql";
import { resolve } from "node:path";
import type { Database } from "./client.ts";

export const MIGRATIONS_FOLDER = resolve(import.meta.dir, "../../../drizzle");

/**
 * Applies the committed drizzle-kit migrations. Only the primary calls this, at start. On bun:sqlite it may
 * wait for another process's write lock (a second instance migrating at the same moment): the event loop
 * serves nothing yet, so SQLite's own busy wait is allowed here and switched off again after.
 */
export async function runMigrations(database: Pick<Database, "db" | "driver" | "client">): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_FOLDER };
  if (database.driver === "libsql") {
    await migrateLibsql(database.db as unknown as LibSQLDatabase, config);
    return;
  }
  await database.client.execute("PRAGMA busy_timeout = 10000");
  try {
    migrateBun(database.db as unknown as BunSQLiteDatabase, config);
  } finally {
    await database.client.execute("PRAGMA busy_timeout = 0");
  }
}
