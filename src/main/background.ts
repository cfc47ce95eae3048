// The instance's background work, built from the configuration: the queue (Redis, or in process without
// Redis), the outbox relay, the cron scheduler and the mailer. buildDeps creates it, then registers the
// features' job handlers on its queue and adds their schedules to its cron; start() runs once the server is
// listening; close() stops cron, then the relay, then the queue (all before Redis closes).
import type { Config } from "../config.ts";
import type { Redis } from "../platform/redis.ts";
import type { Role } from "../platform/cluster/role.ts";
import { MemoryLeaseStore, RedisLeaseStore } from "../platform/cron/lease.ts";
import { MemoryRunStore, RedisRunStore } from "../platform/cron/runs.ts";
import { CronScheduler } from "../platform/cron/scheduler.ts";
import type { Database } from "../platform/db/client.ts";
import { DbMailer } from "../platform/mail/db-mailer.ts";
import { HttpMailer, mailFailureIsAboutTheMessage } from "../platform/mail/http-mailer.ts";
import type { Mailer } from "../platform/mail/port.ts";
import type { Logger } from "../platform/observability/logger.ts";
import type { OpsMetrics } from "../platform/observability/ops-metrics.ts";
import { breakerSettings, DEPENDENCY, type Breakers } from "../platform/resilience/breakers.ts";
import { backgroundGraceMs } from "../platform/lifecycle/shutdown.ts";
import { MemoryQueue } from "../platform/jobs/memory-queue.ts";
import { queueOptions } from "./options.ts";
import type { JobQueue } from "../platform/jobs/port.ts";
import { RedisQueue } from "../platform/jobs/redis-queue.ts";
import { outboxLedger } from "../platform/jobs/outbox.ts";
import { OutboxRelay } from "../platform/jobs/relay.ts";

export interface Background {
  queue: JobQueue;
  relay: OutboxRelay;
  /** Its schedules come bound to their dependencies (platform/feature.ts): their runs are handed nothing. */
  cron: CronScheduler<void>;
  mailer: Mailer;
  /** Starts the relay, the worker (JOBS_WORKER_ENABLED) and cron (CRON_ENABLED). */
  start(): void;
  close(): Promise<void>;
}

export function createBackground(
  config: Config,
  logger: Logger,
  redis: Redis | null,
  database: Database,
  role: Role,
  ops: { breakers: Breakers; metrics: OpsMetrics },
): Background {
  const { breakers, metrics } = ops;
  const options = { ...queueOptions(config, logger, metrics.onJobRun), ledger: outboxLedger(database, () => role.isPrimary()) };
  const queue: JobQueue = redis ? new RedisQueue(redis, config.REDIS_PREFIX, options) : new MemoryQueue(options);
  const relay = new OutboxRelay(database, queue, role, {
    logger,
    retention: { completedMs: options.retentionCompletedMs, failedMs: options.retentionFailedMs },
  });
  const cron = new CronScheduler<void>({
    schedules: [],
    leases: redis ? new RedisLeaseStore(redis, `${config.REDIS_PREFIX}cron:`) : new MemoryLeaseStore(),
    runs: redis ? new RedisRunStore(redis, `${config.REDIS_PREFIX}cron:`, logger) : new MemoryRunStore(),
    instanceId: config.INSTANCE_ID,
    canWrite: () => role.isPrimary(),
    leaseMs: config.CRON_LEASE_MS,
    onRun: metrics.onCronRun,
    shutdownGraceMs: backgroundGraceMs(config.SHUTDOWN_TIMEOUT_MS),
    logger,
  });
  const mailer: Mailer = config.MAIL_API_URL
    ? new HttpMailer({
        url: config.MAIL_API_URL,
        token: config.MAIL_API_TOKEN,
        from: config.MAIL_FROM,
        timeoutMs: config.MAIL_TIMEOUT_MS,
        breaker: breakers.get(DEPENDENCY.mail, breakerSettings(config.BREAKER_MAIL_API), mailFailureIsAboutTheMessage),
      })
    : new DbMailer(database);
  let started = false;
  return {
    queue,
    relay,
    cron,
    mailer,
    start() {
      if (started) return;
      started = true;
      relay.start();
      if (config.JOBS_WORKER_ENABLED) queue.start({ canWrite: () => role.isPrimary() });
      if (config.CRON_ENABLED) cron.start();
    },
    async close() {
      await cron.close();
      await relay.close();
      await queue.close();
    },
  };
}
