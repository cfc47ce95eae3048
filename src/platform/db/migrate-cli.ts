// `bun run db:migrate`: applies the migrations to DATABASE_URL and exits. On Fly, litefs.yml runs it on the primary candidate.
import { loadConfig, ConfigError } from "../../config.ts";
import { openDatabase } from "./client.ts";
import { runMigrations } from "./migrate.ts";

try {
  const config = loadConfig();
  const database = await openDatabase(config.DATABASE_URL, { setWal: true });
  await runMigrations(database.db);
  database.close();
  console.log(JSON.stringify({ level: "info", msg: "migrations applied", database: config.DATABASE_URL }));
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${(err as Error).message}`);
  process.exit(1);
}
