// The cluster view behind GET /cluster/stats: the heartbeat table read through the health rule
// (three missed beats = unhealthy) and the load score (0.7 x in-flight + 0.3 x CPU).
import type { Database } from "../../platform/db/client.ts";
import { listInstances, type InstanceRow } from "../../platform/cluster/instances.ts";
import { round2 } from "../../platform/cluster/process-stats.ts";
import { MISSED_BEATS_UNHEALTHY } from "../../platform/cluster/registry.ts";
import type { ClusterStats, InstanceStats } from "./model.ts";

/** Slack for timer jitter: a beat that lands a little late is not counted as missed. */
const JITTER_MS = 1_000;

export const loadScore = (inFlight: number, cpuPercent: number) => round2(0.7 * inFlight + 0.3 * cpuPercent);

export function isHealthy(lastHeartbeat: string, intervalSeconds: number, now: number): boolean {
  const age = now - Date.parse(lastHeartbeat);
  return age <= MISSED_BEATS_UNHEALTHY * intervalSeconds * 1000 + JITTER_MS;
}

/** A heartbeat row; the columns added later may be absent (rows built by hand in tests and tools). */
type Row = Omit<InstanceRow, "replicaLagSeconds" | "history"> & Partial<Pick<InstanceRow, "replicaLagSeconds" | "history">>;

export function summarize(rows: readonly Row[], intervalSeconds: number, now = Date.now()): ClusterStats {
  const instances: InstanceStats[] = rows.map((r) => ({
    id: r.id,
    region: r.region,
    role: r.role,
    host: r.host,
    port: r.port,
    version: r.version,
    started_at: r.startedAt,
    last_heartbeat: r.lastHeartbeat,
    seconds_since_heartbeat: Math.max(0, round2((now - Date.parse(r.lastHeartbeat)) / 1000)),
    healthy: isHealthy(r.lastHeartbeat, intervalSeconds, now),
    in_flight: r.inFlight,
    cpu_usage: round2(r.cpuPercent),
    memory_usage: round2(r.memoryPercent),
    load_score: loadScore(r.inFlight, r.cpuPercent),
    replica_lag_seconds: r.replicaLagSeconds == null ? null : round2(r.replicaLagSeconds),
  }));
  const healthy = instances.filter((i) => i.healthy);
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : round2(xs.reduce((a, b) => a + b, 0) / xs.length));
  let least: InstanceStats | null = null;
  for (const i of healthy) if (least === null || i.load_score < least.load_score) least = i;
  return {
    total_instances: instances.length,
    healthy_instances: healthy.length,
    total_connections: healthy.reduce((n, i) => n + i.in_flight, 0),
    average_cpu_usage: mean(healthy.map((i) => i.cpu_usage)),
    average_memory_usage: mean(healthy.map((i) => i.memory_usage)),
    least_loaded_instance: least?.id ?? null,
    instances,
  };
}

export interface ClusterStatsDeps {
  database: Database;
  /** Seconds between heartbeats: three missed make an instance unhealthy. */
  config: { HEARTBEAT_INTERVAL: number };
}

export async function clusterStats(deps: ClusterStatsDeps): Promise<ClusterStats> {
  return summarize(await listInstances(deps.database.db), deps.config.HEARTBEAT_INTERVAL);
}
