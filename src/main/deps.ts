// What the composition root hands to createApp. Built by buildDeps (platform.ts) or a test, never on import.
import type { Config } from "../config.ts";
import type { Cache } from "../platform/cache/port.ts";
import type { Role } from "../platform/cluster/role.ts";
import type { PrimaryLink } from "../platform/cluster/internal.ts";
import type { Database } from "../platform/db/client.ts";
import type { JobQueue } from "../platform/jobs/port.ts";
import type { CronView } from "../platform/cron/scheduler.ts";
import type { Auth } from "../platform/http/auth.ts";
import type { WorkGate } from "../platform/http/work-gate.ts";
import type { RateLimiter } from "../platform/http/rate-limit.ts";
import type { Logger } from "../platform/observability/logger.ts";
import type { OutboxKick } from "../platform/jobs/relay.ts";
import type { Redis } from "../platform/redis.ts";
import type { History } from "../platform/observability/history.ts";
import type { Mailer } from "../platform/mail/port.ts";
import type { OpsMetrics } from "../platform/observability/ops-metrics.ts";
import type { Breakers } from "../platform/resilience/breakers.ts";
import type { HttpMetrics } from "../platform/observability/metrics.ts";

export interface AppDeps {
  config: Config;
  logger: Logger;
  database: Database;
  /** Null in the no-Redis mode. */
  redis: Redis | null;
  cache: Cache;
  queue: JobQueue;
  outbox: OutboxKick;
  /** The mail API, or the database outbox of mails without one. */
  mailer: Mailer;
  /** The cron schedules and their last runs (GET /admin/cron). */
  cron: CronView;
  role: Role;
  /** How this instance reaches the primary when it is a replica (the registry writes). */
  primary: PrimaryLink;
  /** Token and session checks (the auth macro and the cached-read fast path share it). */
  auth: Auth;
  rateLimiter: RateLimiter;
  /** Bounds password hashing and verification at once (beyond it: 503 at once). */
  hashing: WorkGate;
  /** Circuit breakers of the outbound dependencies (mail API, primary, Machines API). */
  breakers: Breakers;
  /** Job, cron, scaler and rate-limit figures for /metrics. */
  opsMetrics: OpsMetrics;
  /** The last hour of this instance, sampled while it serves (the dashboard's charts). */
  history: History;
  /** Request counts and durations for /metrics; null when METRICS_ENABLED is false. */
  httpMetrics: HttpMetrics | null;
  /** Requests being served right now (the heartbeat reports it). */
  inFlight: () => number;
}
