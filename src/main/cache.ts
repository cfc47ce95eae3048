// Builds the cache an instance uses from its configuration: NoCache when disabled, else the two-tier cache
// with a Redis L2 and bus when Redis is configured, or L1 alone with the in-process bus when it is not.
import type { Config } from "../config.ts";
import type { Redis } from "../platform/redis.ts";
import type { Role } from "../platform/cluster/role.ts";
import { openPosition, noPosition } from "../platform/cluster/position.ts";
import type { Logger } from "../platform/observability/logger.ts";
import { MemoryBus, RedisBus } from "../platform/cache/bus.ts";
import { RedisL2 } from "../platform/cache/l2.ts";
import { AdaptiveL2Policy, alwaysL2 } from "../platform/cache/l2-policy.ts";
import { withTimeout } from "../platform/redis.ts";
import { NoCache, type Cache } from "../platform/cache/port.ts";
import { settlingPolicy } from "../platform/cache/settle.ts";
import { TwoTierCache } from "../platform/cache/two-tier.ts";
import { DEPENDENCY, type Breakers } from "../platform/resilience/breakers.ts";

/** Long enough to measure a far region's round trip rather than only "over the L2 timeout". */
const L2_PROBE_TIMEOUT_MS = 2_000;

/** `localBus`: the in-process bus to use when there is no Redis, for a caller that listens on it too (users-cli.ts). */
export async function createCache(
  config: Config,
  logger: Logger,
  redis: Redis | null,
  role: Role,
  breakers?: Breakers,
  localBus: MemoryBus = new MemoryBus(),
): Promise<Cache> {
  if (!config.CACHE_ENABLED) {
    logger.info("cache disabled (CACHE_ENABLED=false)");
    return new NoCache();
  }
  const position = openPosition(config.DATABASE_URL, config.LITEFS_DIR);
  const l2 = redis
    ? new RedisL2(redis, config.REDIS_PREFIX, config.CACHE_L2_TIMEOUT_MS, {
        threshold: config.CACHE_BREAKER_THRESHOLD,
        cooldownMs: config.CACHE_BREAKER_COOLDOWN_MS,
      })
    : null;
  // The L2 keeps its own breaker (cache/l2.ts); the registry reports it beside the others, read-only.
  if (l2 && breakers) breakers.observe(DEPENDENCY.redisL2, () => l2.breakerView());
  // A far region skips an L2 that costs more than its local replica's read (see l2-policy.ts).
  const l2Policy = settlingPolicy(
    redis && config.CACHE_L2_POLICY === "adaptive"
      ? new AdaptiveL2Policy({ probe: () => withTimeout(redis.ping(), L2_PROBE_TIMEOUT_MS, "L2 probe"), failureMs: config.CACHE_L2_TIMEOUT_MS })
      : alwaysL2,
  );
  const bus = redis
    ? new RedisBus(redis, `${config.REDIS_PREFIX}cache:bus`, logger, Math.max(config.CACHE_L2_TIMEOUT_MS, 250), {
        heartbeatMs: config.CACHE_BUS_HEARTBEAT_MS,
        deadlineMs: config.CACHE_BUS_DEADLINE_MS,
        // Other instances' failed tag bumps are retried once their L2 breaker lets them (settle.ts).
        onRecovered: () => l2Policy.quietFor(config.CACHE_BREAKER_COOLDOWN_MS + 2 * config.CACHE_BUS_DEADLINE_MS),
      })
    : localBus;
  l2Policy.start();
  const cache = new TwoTierCache({
    instanceId: config.INSTANCE_ID,
    logger,
    l1: {
      enabled: config.CACHE_L1_ENABLED,
      maxItems: config.CACHE_L1_MAX_ITEMS,
      maxBytes: config.CACHE_L1_MAX_BYTES,
      maxEntryBytes: config.CACHE_L1_MAX_ENTRY_BYTES,
    },
    ttlSeconds: config.CACHE_TTL_SECONDS,
    staleGraceSeconds: config.CACHE_STALE_GRACE_SECONDS,
    l2,
    bus,
    position: position === noPosition ? undefined : position,
    l2Policy,
    isPrimary: () => role.isPrimary(),
  });
  await cache.start();
  return cache;
}
