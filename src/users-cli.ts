// `bun run users -- demote <email>` / `promote <email>`: grants or takes admin rights from the shell, the one way
// to change them (the API has no route for it). A token's admin rights are its account's (auth.ts), so the change
// applies to the account's existing tokens, no new login needed. `revoke <email>` ends every session of the
// account, as a logout with `all` does (the same Sessions.revokeAll): a demotion revokes nothing, so this is how
// an operator ends a leaked token. Built by the same composition root as an
// instance, so the change reaches every instance through the cache bus at once: with REDIS_URL, within a second. Without Redis the bus is in-process and reaches no other process: what the
// command's cache put on it is sent to the instance on this machine through its private listener instead (with
// INTERNAL_TOKEN; without it, the running instance sees the change when its cached session state expires,
// CACHE_TTL_SECONDS, as does any other instance on the same database: the command's message says which). Run it where the primary's database is (on Fly, the primary machine: `fly ssh console`);
// a replica's database is read-only.
import { hostname } from "node:os";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { buildDeps } from "./main/platform.ts";
import { localHost } from "./main/options.ts";
import { MemoryBus, type BusMessage } from "./platform/cache/bus.ts";
import { createLogger } from "./platform/observability/logger.ts";
import { setAdmin } from "./modules/users/service.ts";
import { usersRepo } from "./modules/users/repository.ts";

const USAGE = "usage: bun run users -- promote|demote|revoke <email>";
/** How long the command waits for a failed invalidation's retry before it gives up and says so. */
const SETTLE_MS = 3_000;
/** How long the instance beside the command may take to answer its invalidation. */
const TELL_TIMEOUT_MS = 5_000;

/**
 * Without Redis: sends the keys and tags the command's cache published to the instance listening on this
 * machine's INTERNAL_PORT (POST /internal/cache/invalidate), which drops them as if its bus had carried them.
 * `told` is false when an instance was there and could not be told.
 */
async function tellLocalInstance(config: Config, published: BusMessage[], rights: string): Promise<{ told: boolean; reach: string }> {
  const untilTtl = `${rights} there once its cached state of the account expires, within ${config.CACHE_TTL_SECONDS} s`;
  if (!config.INTERNAL_TOKEN || config.INTERNAL_PORT === 0) {
    return { told: true, reach: `without REDIS_URL, INTERNAL_TOKEN and a fixed INTERNAL_PORT no running instance can be told: ${untilTtl}` };
  }
  const where = `${localHost(config)}:${config.INTERNAL_PORT}`;
  // Only the one process answering on INTERNAL_PORT hears it (with reusePort, one of those sharing it).
  const others = `; any other instance on this database is not told (nothing carries it there without REDIS_URL): ${rights} there once its cached state of the account expires, within ${config.CACHE_TTL_SECONDS} s`;
  const body = {
    keys: [...new Set(published.flatMap((m) => m.k ?? []))],
    tags: [...new Set(published.flatMap((m) => m.t ?? []))],
  };
  try {
    const res = await fetch(`http://${where}/internal/cache/invalidate`, {
      method: "POST",
      headers: { authorization: `Bearer ${config.INTERNAL_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TELL_TIMEOUT_MS),
    });
    if (res.status === 204) return { told: true, reach: `the instance on ${where} was told: ${rights} there now${others}` };
    return { told: false, reach: `the instance on ${where} answered ${res.status}: ${untilTtl}` };
  } catch (err) {
    // Nothing listening: no instance runs here, and one that starts reads the database.
    if ((err as { code?: string }).code === "ECONNREFUSED") return { told: true, reach: `no instance listens on ${where} (one that starts reads the database)${others}` };
    return { told: false, reach: `the instance on ${where} could not be told (${(err as Error).message}): ${untilTtl}` };
  }
}

async function main(argv: string[]): Promise<number> {
  const [action, email] = argv;
  if ((action !== "promote" && action !== "demote" && action !== "revoke") || !email) {
    console.error(USAGE);
    return 2;
  }
  // No start-up chores of a serving instance: ADMIN_EMAIL would promote the account this demotes, and warming
  // the cache is of no use to a command.
  // An instance id of its own: run beside an instance (`fly ssh console` on the primary), the default would be
  // that instance's (FLY_MACHINE_ID), and a cache ignores bus messages carrying its own id.
  const config = loadConfig({
    ...process.env,
    INSTANCE_ID: `users-cli-${hostname()}-${process.pid}`,
    ADMIN_EMAIL: undefined,
    ADMIN_PASSWORD: undefined,
    CACHE_WARM_COUNT: "0",
    METRICS_ENABLED: "false",
  });
  const logger = createLogger(config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL, { instance: `${config.INSTANCE_ID}-users-cli` });
  // Without Redis, what the cache publishes is kept to be sent to the instance beside this command.
  const localBus = new MemoryBus();
  const published: BusMessage[] = [];
  await localBus.start({ message: (m) => published.push(m), reset: () => {}, state: () => {} });
  const built = await buildDeps(config, logger, { localBus });
  try {
    if (!built.deps.role.isPrimary()) {
      console.error("this instance's database is a replica (read-only): run the command on the primary");
      return 1;
    }
    const user = await usersRepo.findByEmail(built.deps.database.db, email.trim().toLowerCase());
    if (!user) {
      console.error(`no account has the email ${JSON.stringify(email)}`);
      return 1;
    }
    // What changed, as "<email> (user <id>) <done>", and what the account's tokens get where the change is seen.
    let done: string;
    let rights: string;
    if (action === "revoke") {
      await built.deps.auth.sessions.revokeAll(user.id);
      done = "has no session left (every one is revoked)";
      rights = "the account's tokens are refused";
    } else {
      const isAdmin = action === "promote";
      if (user.isAdmin === isAdmin) {
        console.log(`${user.email} (user ${user.id}) is ${isAdmin ? "already" : "not"} an administrator: nothing to do`);
        return 0;
      }
      await setAdmin(built.deps, user.id, isAdmin);
      done = isAdmin ? "is now an administrator" : "is no longer an administrator";
      rights = isAdmin ? "the account's tokens have admin rights" : "the account's tokens have lost admin rights (they keep working as the user's own)";
    }
    // An invalidation that failed is retried in the background: wait for it (bounded) before closing, which
    // would drop it, and say so if it did not go through.
    const cache = built.deps.cache;
    for (let waited = 0; cache.owed && waited < SETTLE_MS; waited += 50) await Bun.sleep(50);
    if (cache.owed) {
      console.error(
        `${user.email} (user ${user.id}) ${done} in the database, but Redis could not be told: ${rights} on an instance once its cached state of the account expires, within ${config.CACHE_TTL_SECONDS} s`,
      );
      return 1;
    }
    const { told, reach } = built.deps.redis
      ? { told: true, reach: `every instance sharing this Redis was told: ${rights} there now` }
      : await tellLocalInstance(config, published, rights);
    if (!told) {
      console.error(`${user.email} (user ${user.id}) ${done} in the database, but ${reach}`);
      return 1;
    }
    console.log(`${user.email} (user ${user.id}) ${done}; ${reach}`);
    logger.info(action === "revoke" ? "sessions revoked" : action === "promote" ? "admin rights granted" : "admin rights taken", { user_id: user.id });
    return 0;
  } finally {
    await built.close();
  }
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `failed: ${(err as Error).message}`);
  process.exit(1);
}
