import { migrate } from "drizzle-orm/libsql/migrator";
import { resolve } from "node:path";
import type { Db } from "./client.ts";

export const MIGRATIONS_FOLDER = resolve(import.meta.dir, "../../../drizzle");

/** Applies the committed drizzle-kit migrations. Only the primary calls this. */
export async function runMigrations(db: Db): Promise<void> {
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
}
