// What the composition root hands to createApp. Built in src/index.ts (or by a test), never on import.
import type { RedisClientType } from "redis";
import type { Config } from "./config.ts";
import type { Cache } from "./platform/cache/port.ts";
import type { Role } from "./platform/cluster/role.ts";
import type { Database } from "./platform/db/client.ts";
import type { JobQueue } from "./platform/jobs/port.ts";
import type { CronView } from "./platform/cron/scheduler.ts";
import type { RateLimiter } from "./platform/http/rate-limit.ts";
import type { Logger } from "./platform/observability/logger.ts";

export type Redis = RedisClientType<any, any, any, any, any>;

export interface OutboxRelay {
  /** Asks the relay to move committed outbox rows to the queue now, instead of at its next poll. */
  kick(): void;
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  database: Database;
  /** Null in the no-Redis mode. */
  redis: Redis | null;
  cache: Cache;
  queue: JobQueue;
  outbox: OutboxRelay;
  /** The cron schedules and their last runs (GET /admin/cron). */
  cron: CronView;
  role: Role;
  rateLimiter: RateLimiter;
  /** Requests being served right now (the heartbeat reports it). */
  inFlight: () => number;
}
