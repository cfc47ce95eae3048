// Replica lag as /metrics shows it: 0 on the primary (it writes the heartbeat table), elsewhere the age of the
// newest heartbeat row in the local copy (see heartbeatAgeSeconds). Its resolution is the heartbeat interval.
import type { Database } from "../db/client.ts";
import { metric } from "../observability/metrics.ts";
import type { Role } from "./role.ts";
import { heartbeatAgeSeconds } from "./instances.ts";

export async function replicaLagSeconds(deps: { database: Database; role: Role }): Promise<number | null> {
  if (deps.role.isPrimary()) return 0;
  return heartbeatAgeSeconds(deps.database.db).catch(() => null);
}

export async function renderReplicaLag(out: string[], deps: { database: Database; role: Role }, heartbeatIntervalSeconds: number): Promise<void> {
  const lag = await replicaLagSeconds(deps);
  if (lag === null) return;
  metric(out, "replica_lag_seconds", "gauge", "Age of the newest heartbeat in this instance's copy of the database (0 on the primary).", lag);
  metric(out, "heartbeat_interval_seconds", "gauge", "HEARTBEAT_INTERVAL: replica_lag_seconds is only meaningful above it.", heartbeatIntervalSeconds);
}
