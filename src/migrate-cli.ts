// `bun run db:migrate`: applies the migrations to DATABASE_URL and exits. On Fly, litefs.yml runs it on every
// primary candidate; a candidate that is a replica at that moment (another machine holds the lease, so
// `.primary` exists) skips it: its database is read-only and the primary has migrated.
import { loadConfig, ConfigError } from "./config.ts";
import { instanceRole } from "./platform/cluster/role.ts";
import { openDatabase } from "./platform/db/client.ts";
import { runMigrations } from "./platform/db/migrate.ts";
import { roleOptions } from "./main/options.ts";

try {
  const config = loadConfig();
  const role = instanceRole(roleOptions(config));
  await role.ready();
  const primary = role.isPrimary();
  role.close();
  if (!primary) {
    console.log(JSON.stringify({ level: "info", msg: "not the primary: migrations skipped (the primary applies them)", role: role.state().kind, primary: role.primaryName() }));
  } else {
    const database = await openDatabase(config.DATABASE_URL, { setWal: true });
    await runMigrations(database);
    database.close();
    console.log(JSON.stringify({ level: "info", msg: "migrations applied", database: config.DATABASE_URL }));
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${(err as Error).message}`);
  process.exit(1);
}
