// The one list of features, each handed the narrow slice of the instance it asked for. Adding a feature (or a
// job type, schedule, cached read or start-up chore to one) touches its folder and this list; createApp mounts
// the routes, buildDeps registers the jobs and schedules and runs the chores, in this order.
import type { AppDeps } from "./deps.ts";
import type { Database } from "../platform/db/client.ts";
import type { Feature } from "../platform/feature.ts";
import { adminFeature } from "../modules/admin/index.ts";
import { authFeature } from "../modules/auth/index.ts";
import { cacheFeature } from "../modules/cache/index.ts";
import { clusterFeature } from "../modules/cluster/index.ts";
import { dashboardFeature } from "../modules/dashboard/index.ts";
import { healthFeature } from "../modules/health/index.ts";
import { jobsFeature } from "../modules/jobs/index.ts";
import { operationsFeature } from "../modules/operations/index.ts";
import { postsFeature } from "../modules/posts/index.ts";
import { newestPostsPart } from "../modules/posts/service.ts";
import { preferencesFeature } from "../modules/preferences/index.ts";
import { preferencesPart } from "../modules/preferences/service.ts";
import { userAccounts } from "../modules/users/accounts.ts";
import { usersFeature } from "../modules/users/index.ts";
import type { DetailParts } from "../modules/users/service.ts";

/** The settings `keys` of the configuration, and nothing else of it. */
function pick<C extends object, K extends keyof C>(config: C, ...keys: K[]): Pick<C, K> {
  const out = {} as Pick<C, K>;
  for (const k of keys) out[k] = config[k];
  return out;
}

/**
 * The parts of a user's detail that posts and preferences own, for the users feature: those two stand on users
 * (a post needs its user), so users gets their parts from here instead of importing them. The return type is
 * inferred (checked against DetailParts) so the parts' own schemas, and with them UserDetail's types, reach users.
 */
export function userDetailParts(database: Database) {
  return { posts: newestPostsPart(database), preferences: preferencesPart(database) } satisfies DetailParts;
}

export function appFeatures(deps: AppDeps): Feature[] {
  const { config, database, cache, auth, logger, role, queue, breakers } = deps;
  return [
    // At the root of the site, in this order.
    dashboardFeature(),
    healthFeature({ database, redis: deps.redis, role, breakers, config: pick(config, "INSTANCE_ID", "FLY_REGION") }),
    cacheFeature({ cache, auth }),
    clusterFeature({ database, role, auth, cache, config: pick(config, "HEARTBEAT_INTERVAL", "INTERNAL_TOKEN") }),
    // Under /api/v1, in this order.
    authFeature({
      accounts: userAccounts(database),
      auth,
      hashing: deps.hashing,
      rateLimiter: deps.rateLimiter,
      config: pick(
        config,
        "jwtSecret",
        "CLIENT_IP_HEADER",
        "RATE_LIMIT_READ_PER_MINUTE",
        "RATE_LIMIT_WRITE_PER_MINUTE",
        "RATE_LIMIT_LOGIN_PER_MINUTE",
        "RATE_LIMIT_LOGIN_IP_PER_MINUTE",
        "RATE_LIMIT_REGISTER_PER_HOUR",
      ),
    }),
    usersFeature({
      database,
      cache,
      logger,
      hashing: deps.hashing,
      outbox: deps.outbox,
      auth,
      mailer: deps.mailer,
      role,
      detail: userDetailParts(database),
      admin: config.ADMIN_EMAIL && config.ADMIN_PASSWORD ? { email: config.ADMIN_EMAIL, password: config.ADMIN_PASSWORD } : null,
      config: pick(config, "CACHE_ENABLED", "CACHE_WARM_COUNT", "CACHE_WARM_TIMEOUT_MS"),
    }),
    postsFeature({ database, cache, auth }),
    preferencesFeature({ database, cache, auth }),
    jobsFeature({
      database,
      logger,
      queue,
      auth,
      role,
      primary: deps.primary,
      breakers,
      config: pick(config, "JOB_MAX_RETRIES"),
    }),
    adminFeature({ database, logger, auth, outbox: deps.outbox, cron: deps.cron, queue }),
    operationsFeature({
      database,
      logger,
      auth,
      queue,
      role,
      breakers,
      opsMetrics: deps.opsMetrics,
      history: deps.history,
      config: pick(config, "INSTANCE_ID", "FLY_REGION", "SCALER_MODE", "SCALER_INTERVAL", "HEARTBEAT_INTERVAL", "FLY_API_TOKEN", "FLY_APP_NAME"),
    }),
  ];
}

/** Runs the features' start-up chores of one moment, in list order; a detached one is started and not waited for. */
export async function runStartup(features: readonly Feature[], when: "built" | "serve"): Promise<void> {
  for (const f of features) {
    for (const chore of f.startup ?? []) {
      if (chore.when !== when) continue;
      if (chore.detached) void chore.run();
      else await chore.run();
    }
  }
}
