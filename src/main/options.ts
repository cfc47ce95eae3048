// The configuration turned into the platform's own options: every platform piece takes a narrow, typed set
// of settings, and this file is the one place that knows which environment variable fills which of them.
import type { Config } from "../config.ts";
import type { InstanceRoleOptions } from "../platform/cluster/role.ts";
import type { PrimaryLink } from "../platform/cluster/internal.ts";
import { MISSED_BEATS_UNHEALTHY, type HeartbeatOptions } from "../platform/cluster/registry.ts";
import { FLY_HSTS_MAX_AGE, type HeaderSettings } from "../platform/http/headers.ts";
import type { QueueOptions } from "../platform/jobs/options.ts";
import { backgroundGraceMs } from "../platform/lifecycle/shutdown.ts";
import type { Logger } from "../platform/observability/logger.ts";
import { breakerSettings } from "../platform/resilience/breakers.ts";
import { perRegion } from "../platform/scaler/decide.ts";
import type { ScalerOptions } from "../platform/scaler/scaler.ts";

/** The address a process on this machine dials to reach a listener bound to HOST (a wildcard means every interface). */
export const localHost = (config: Pick<Config, "HOST">): string => (config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST);

export const roleOptions = (config: Config): InstanceRoleOptions => ({
  litefsDir: config.LITEFS_DIR,
  litefsApiUrl: config.LITEFS_API_URL,
  databaseUrl: config.DATABASE_URL,
});

export const primaryLink = (config: Config): PrimaryLink => ({
  url: config.PRIMARY_URL,
  flyApp: config.FLY_APP_NAME,
  internalPort: config.INTERNAL_PORT,
  token: config.INTERNAL_TOKEN,
  breaker: breakerSettings(config.BREAKER_PRIMARY),
});

export const heartbeatOptions = (config: Config, serving: Pick<HeartbeatOptions, "port" | "inFlight" | "host">): HeartbeatOptions => ({
  instanceId: config.INSTANCE_ID,
  region: config.FLY_REGION,
  intervalSeconds: config.HEARTBEAT_INTERVAL,
  ...serving,
});

/** HSTS_MAX_AGE, or when unset a year on Fly (its edge serves HTTPS) and none elsewhere. */
export const headerSettings = (config: Config): HeaderSettings => ({
  corsOrigins: config.corsOrigins,
  hstsMaxAge: config.HSTS_MAX_AGE ?? (config.FLY_APP_NAME ? FLY_HSTS_MAX_AGE : 0),
});

export function queueOptions(config: Config, logger: Logger, onRun?: QueueOptions["onRun"]): QueueOptions {
  return {
    onRun,
    concurrency: config.JOB_CONCURRENCY,
    visibilityTimeoutMs: config.JOB_VISIBILITY_TIMEOUT_MS,
    maxRetries: config.JOB_MAX_RETRIES,
    backoffBaseMs: config.JOB_BACKOFF_BASE_MS,
    backoffCapMs: config.JOB_BACKOFF_CAP_MS,
    retentionCompletedMs: config.JOB_RETENTION_COMPLETED_SECONDS * 1000,
    retentionFailedMs: config.JOB_RETENTION_FAILED_SECONDS * 1000,
    shutdownGraceMs: backgroundGraceMs(config.SHUTDOWN_TIMEOUT_MS),
    consumerName: `${config.INSTANCE_ID}:${crypto.randomUUID().slice(0, 8)}`,
    logger,
  };
}

export const scalerOptions = (config: Config): ScalerOptions => ({
  mode: config.SCALER_MODE,
  intervalSeconds: config.SCALER_INTERVAL,
  instanceId: config.INSTANCE_ID,
  policy: {
    min: perRegion(config.SCALER_MIN),
    max: perRegion(config.SCALER_MAX),
    targetPercent: config.SCALER_TARGET_PERCENT,
    capacity: config.SCALER_CAPACITY,
    upCooldownMs: config.SCALER_UP_COOLDOWN * 1000,
    downCooldownMs: config.SCALER_DOWN_COOLDOWN * 1000,
    primaryRegion: config.PRIMARY_REGION,
    staleAfterMs: MISSED_BEATS_UNHEALTHY * config.HEARTBEAT_INTERVAL * 1000,
  },
  machines:
    config.FLY_API_TOKEN && config.FLY_APP_NAME
      ? { baseUrl: config.FLY_API_URL, token: config.FLY_API_TOKEN, app: config.FLY_APP_NAME, breaker: breakerSettings(config.BREAKER_FLY_MACHINES) }
      : undefined,
});
