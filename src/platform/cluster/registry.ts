// The heartbeat registry as an instance uses it: register at start, beat every HEARTBEAT_INTERVAL, deregister
// on shutdown. Writes go to the local database on the primary and to the primary's /internal routes on a
// replica (the role is read on each write, so a failover moves them). A failed write is logged and retried;
// it never throws out of the heartbeat.
import { hostname } from "node:os";
import type { Database } from "../db/client.ts";
import type { Logger } from "../observability/logger.ts";
import { DEPENDENCY, isClientError, type Breakers } from "../resilience/breakers.ts";
import { callPrimary as callPrimaryDirect, InternalCallError, type PrimaryLink } from "./internal.ts";
import { q } from "../db/tx.ts";
import { removeInstance, removeInstancesNotSeenSince, upsertInstance, type InstanceBeat } from "./instances.ts";
import { CpuSampler, memoryPercent } from "./process-stats.ts";
import type { Role } from "./role.ts";
import pkg from "../../../package.json" with { type: "json" };

/** An instance is unhealthy once it has missed this many beats. */
export const MISSED_BEATS_UNHEALTHY = 3;
/** Shutdown waits at most this long for a beat in flight, then as long again for the deregistration. */
const STOP_WAIT_MS = 2_000;
/** Rows not refreshed for this long are deleted by the hourly prune. */
export const PRUNE_AFTER_MS = 60 * 60 * 1000;

export interface RegistryDeps {
  /** How a replica's writes reach the primary. */
  primary: PrimaryLink;
  logger: Logger;
  database: Database;
  role: Role;
  /** When given, calls to the primary go through its circuit breaker (fail fast while the primary is down). */
  breakers?: Breakers;
}

/** The body of PUT /internal/instances/:id (snake_case like the rest of the wire). */
export interface BeatWire {
  region: string;
  role: "primary" | "replica";
  host: string;
  port: number;
  version: string;
  started_at: string;
  in_flight: number;
  cpu_percent: number;
  memory_percent: number;
  /** Optional: a replica of the previous version sends neither. */
  replica_lag_seconds?: number | null;
  history?: string | null;
}

export const beatToWire = (b: InstanceBeat): BeatWire => ({
  region: b.region,
  role: b.role,
  host: b.host,
  port: b.port,
  version: b.version,
  started_at: b.startedAt,
  in_flight: b.inFlight,
  cpu_percent: b.cpuPercent,
  memory_percent: b.memoryPercent,
  replica_lag_seconds: b.replicaLagSeconds,
  history: b.history,
});

export const beatFromWire = (id: string, w: BeatWire): InstanceBeat => ({
  id,
  region: w.region,
  role: w.role,
  host: w.host,
  port: w.port,
  version: w.version,
  startedAt: w.started_at,
  inFlight: w.in_flight,
  cpuPercent: w.cpu_percent,
  memoryPercent: w.memory_percent,
  replicaLagSeconds: w.replica_lag_seconds ?? null,
  history: w.history ?? null,
});

/** Registry writes, sent where they can be done right now: the local database or the primary. */
export function registryWriter(deps: RegistryDeps) {
  const { primary, role, database } = deps;
  const path = (id: string) => `/internal/instances/${encodeURIComponent(id)}`;
  const breaker = deps.breakers?.get(DEPENDENCY.primary, primary.breaker, isClientError);
  const callPrimary: typeof callPrimaryDirect = (...args) => (breaker ? breaker.call(() => callPrimaryDirect(...args)) : callPrimaryDirect(...args));
  return {
    async upsert(beat: InstanceBeat): Promise<"local" | "primary"> {
      if (role.isPrimary()) {
        await database.write((tx) => q(upsertInstance(tx, beat)));
        return "local";
      }
      const wire = beatToWire(beat);
      try {
        await callPrimary(primary, role, "PUT", path(beat.id), wire);
      } catch (err) {
        if (!(err instanceof InternalCallError && err.status === 422)) throw err;
        // A primary of the previous version (during a rolling deploy) refuses the fields it does not know.
        const { replica_lag_seconds: _lag, history: _history, ...older } = wire;
        await callPrimary(primary, role, "PUT", path(beat.id), older);
      }
      return "primary";
    },
    async remove(id: string, timeoutMs?: number): Promise<void> {
      if (role.isPrimary()) await database.write((tx) => q(removeInstance(tx, id)));
      else await callPrimary(primary, role, "DELETE", path(id), undefined, timeoutMs);
    },
    async prune(maxAgeMs: number): Promise<number> {
      if (role.isPrimary()) return database.write((tx) => q(removeInstancesNotSeenSince(tx, maxAgeMs)));
      const res = await callPrimary(primary, role, "POST", "/internal/instances/prune", { max_age_seconds: Math.round(maxAgeMs / 1000) });
      return ((await res.json()) as { removed: number }).removed;
    },
  };
}

/**
 * Deletes instances not seen for an hour (or `maxAgeMs`). The cron schedule calls it hourly; on a replica the
 * delete runs on the primary through /internal.
 */
export async function pruneInstances(deps: RegistryDeps, maxAgeMs = PRUNE_AFTER_MS): Promise<number> {
  const removed = await registryWriter(deps).prune(maxAgeMs);
  if (removed > 0) deps.logger.info("pruned stale instances", { removed, max_age_seconds: Math.round(maxAgeMs / 1000) });
  return removed;
}

export interface HeartbeatOptions {
  /** This instance's row (INSTANCE_ID) and region (FLY_REGION). */
  instanceId: string;
  region: string;
  /** Seconds between beats (HEARTBEAT_INTERVAL). */
  intervalSeconds: number;
  /** The port this instance serves on (the real one, after Bun.serve). */
  port: number;
  /** Requests being served right now. */
  inFlight: () => number;
  host?: string;
  /** This instance's replica lag, carried in each beat so every instance can show every other's. */
  replicaLag?: () => Promise<number | null>;
  /** Its last hour in the compact form of observability/history-summary.ts, or null. */
  historySummary?: () => string | null;
}

export interface Heartbeat {
  /** Resolves after the first attempt to register (successful or not; failures are retried). */
  readonly registered: Promise<void>;
  /** Beats now instead of at the next tick (tests, or after a role change). */
  beat(): Promise<boolean>;
  /** Stops beating and deregisters (bounded; a failure is logged, not thrown). */
  stop(): Promise<void>;
}

/** Starts the heartbeat of this instance. */
export function startHeartbeat(deps: RegistryDeps, opts: HeartbeatOptions): Heartbeat {
  const log = deps.logger.child({ component: "heartbeat" });
  const writer = registryWriter(deps);
  const cpu = new CpuSampler();
  const intervalMs = opts.intervalSeconds * 1000;
  const startedAt = new Date().toISOString();
  const host = opts.host ?? hostname();
  let failures = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<boolean> = Promise.resolve(true);

  const beatOnce = async (): Promise<boolean> => {
    const beat: InstanceBeat = {
      id: opts.instanceId,
      region: opts.region,
      role: deps.role.isPrimary() ? "primary" : "replica",
      host,
      port: opts.port,
      version: pkg.version,
      startedAt,
      inFlight: opts.inFlight(),
      cpuPercent: cpu.sample(),
      memoryPercent: memoryPercent(),
      replicaLagSeconds: opts.replicaLag ? await opts.replicaLag().catch(() => null) : null,
      history: opts.historySummary?.() ?? null,
    };
    try {
      const via = await writer.upsert(beat);
      if (failures > 0) log.info("heartbeat recovered", { after_failures: failures, via });
      else log.debug("heartbeat", { via });
      failures = 0;
      return true;
    } catch (err) {
      failures++;
      log.warn("heartbeat failed; will retry", { attempt: failures, role: beat.role, error: (err as Error).message });
      return false;
    }
  };

  // After a failure, retry sooner (1 s, 2 s, 4 s ...) but never later than the normal interval.
  const nextDelay = () => (failures === 0 ? intervalMs : Math.min(intervalMs, 1000 * 2 ** Math.min(failures - 1, 10)));

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = beatOnce().finally(schedule);
    }, nextDelay());
    timer.unref?.();
  };

  const registered = (current = beatOnce()).then(() => {
    schedule();
  });

  return {
    registered,
    async beat() {
      await current.catch(() => undefined);
      current = beatOnce();
      return current;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      // A beat still in flight could land after the delete and bring the row back: let it finish first.
      await Promise.race([current.catch(() => undefined), Bun.sleep(STOP_WAIT_MS)]);
      try {
        await writer.remove(opts.instanceId, STOP_WAIT_MS);
        log.info("deregistered");
      } catch (err) {
        log.warn("deregistration failed; the row will turn unhealthy and be pruned", { error: (err as Error).message });
      }
    },
  };
}
