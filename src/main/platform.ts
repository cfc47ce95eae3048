// Builds an instance's dependencies from the configuration (database, Redis, cache, background work, auth, rate
// limits, breakers) and closes them in reverse order. serve.ts calls it; tests call it to drive an app directly.
import type { Config } from "../config.ts";
import type { AppDeps } from "./deps.ts";
import type { Cache } from "../platform/cache/port.ts";
import type { MemoryBus } from "../platform/cache/bus.ts";
import { createCache } from "./cache.ts";
import { createBackground } from "./background.ts";
import { Auth } from "../platform/http/auth.ts";
import { Sessions } from "../platform/http/sessions.ts";
import { WorkGate } from "../platform/http/work-gate.ts";
import { instanceRole } from "../platform/cluster/role.ts";
import { primaryLink, roleOptions, scalerOptions } from "./options.ts";
import { openDatabase } from "../platform/db/client.ts";
import { runMigrations } from "../platform/db/migrate.ts";
import { MemoryRateLimiter, RedisRateLimiter } from "../platform/http/rate-limit.ts";
import type { Logger } from "../platform/observability/logger.ts";
import { closeRedis, openRedis, type Redis } from "../platform/redis.ts";
import { Breakers } from "../platform/resilience/breakers.ts";
import { OpsMetrics } from "../platform/observability/ops-metrics.ts";
import { HttpMetrics } from "../platform/observability/metrics.ts";
import { History } from "../platform/observability/history.ts";
import { scalerSchedule } from "../platform/scaler/scaler.ts";
import { boundSchedule, type Feature } from "../platform/feature.ts";
import { appFeatures, runStartup } from "./features.ts";
import { Opened } from "../platform/lifecycle/startup.ts";

export interface BuiltDeps {
  deps: AppDeps;
  /** The features built on `deps` (features.ts): createApp mounts their routes. */
  features: Feature[];
  /** Counted by the server's fetch wrapper; read by deps.inFlight(). */
  requests: { inFlight: number };
  close: () => Promise<void>;
  /** Stops the job worker, relay and cron (close() does it too); a stop begins it beside the HTTP drain. */
  closeBackground: () => Promise<void>;
  /** Starts the background work (outbox relay, job worker, cron); call it once the instance serves. */
  start: () => void;
}

/** `opts.localBus`: see createCache (cache.ts). */
export async function buildDeps(config: Config, logger: Logger, opts: { localBus?: MemoryBus } = {}): Promise<BuiltDeps> {
  // Each part opened here is closed by close() in reverse; a part that throws closes the ones before it (startup.ts).
  const opened = new Opened((part, err) => logger.warn("closing failed", { part, error: err instanceof Error ? err.message : String(err) }));
  const role = await opened.open("cluster role", () => instanceRole(roleOptions(config)), (r) => r.close());
  await opened.open("cluster role (waiting for LiteFS)", () => role.ready());
  const primary = role.isPrimary();
  const database = await opened.open(
    "database (DATABASE_URL)",
    () =>
      openDatabase(config.DATABASE_URL, {
        setWal: primary,
        writeWaitMs: config.DB_WRITE_WAIT_MS,
        driver: config.DATABASE_DRIVER === "auto" ? undefined : config.DATABASE_DRIVER,
      }),
    (db) => db.close(),
  );
  if (primary) {
    await opened.open("database migrations", () => runMigrations(database));
    logger.info("migrations applied", { database: config.DATABASE_URL });
  } else {
    logger.info("replica: migrations left to the primary", { role: role.state().kind, primary: role.primaryName() });
  }

  let redis: Redis | null = null;
  if (config.REDIS_URL) {
    const url = config.REDIS_URL;
    redis = await opened.open("Redis (REDIS_URL)", () => openRedis(url, logger, { commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS }), closeRedis);
  }

  const breakers = await opened.open("breakers", () => new Breakers(logger), (b) => b.close());
  const cache: Cache = await opened.open("cache", () => createCache(config, logger, redis, role, breakers, opts.localBus), (c) => c.close());
  const opsMetrics = new OpsMetrics();
  opsMetrics.timeWrites(database);
  const rateLimiter = await opened.open(
    "rate limits",
    () =>
      redis
        ? new RedisRateLimiter(redis, { prefix: config.REDIS_PREFIX, logger, timeoutMs: Math.max(config.CACHE_L2_TIMEOUT_MS, 100) })
        : new MemoryRateLimiter(),
    (r) => r.close(),
  );
  // Closed first: the job worker and cron use the parts above until they stop.
  let backgroundClosed: Promise<void> | undefined;
  const background = await opened.open(
    "background work (queue, outbox relay, cron)",
    () => createBackground(config, logger, redis, database, role, { breakers, metrics: opsMetrics }),
    (b) => (backgroundClosed ??= b.close()),
  );
  const closeBackground = () => (backgroundClosed ??= background.close());
  const scaler = scalerSchedule({ options: scalerOptions(config), breakers, logger });
  const requests = { inFlight: 0 };
  const deps: AppDeps = {
    config,
    logger,
    database,
    redis,
    cache,
    queue: background.queue,
    outbox: background.relay,
    mailer: background.mailer,
    cron: background.cron,
    role,
    primary: primaryLink(config),
    auth: new Auth(config.jwtSecret, new Sessions(database, cache)),
    rateLimiter,
    hashing: new WorkGate(config.PASSWORD_HASH_CONCURRENCY, config.PASSWORD_HASH_QUEUE),
    breakers,
    opsMetrics,
    history: new History(),
    httpMetrics: config.METRICS_ENABLED ? new HttpMetrics() : null,
    inFlight: () => requests.inFlight,
  };

  const features = await opened.open("features (routes, jobs, schedules)", () => {
    const features = appFeatures(deps);
    for (const feature of features) {
      for (const job of feature.jobs ?? []) background.queue.register(job);
      for (const schedule of feature.schedules ?? []) background.cron.add(schedule);
    }
    if (scaler) background.cron.add(boundSchedule(scaler, deps));
    return features;
  });
  await opened.open("features' start-up chores", () => runStartup(features, "built"));

  return { deps, features, requests, close: () => opened.close(), closeBackground, start: () => background.start() };
}
