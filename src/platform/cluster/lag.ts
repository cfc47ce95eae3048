// Replica lag as /metrics shows it: 0 on the primary (it writes the heartbeat table), elsewhere the age of the
// newest heartbeat row in the local copy (see heartbeatAgeSeconds). Its resolution is the heartbeat interval.
// Every instance also carries its own in its beats, so /metrics shows each instance's as the table holds it.
import type { Database } from "../db/client.ts";
import { labels, metric } from "../observability/metrics.ts";
import type { Role } from "./role.ts";
import { heartbeatAgeSeconds, reportedLags } from "./instances.ts";

export async function replicaLagSeconds(deps: { database: Database; role: Role }): Promise<number | null> {
  if (deps.role.isPrimary()) return 0;
  return heartbeatAgeSeconds(deps.database.db).catch(() => null);
}

export async function renderReplicaLag(out: string[], deps: { database: Database; role: Role }, heartbeatIntervalSeconds: number): Promise<void> {
  const [lag, reported] = await Promise.all([replicaLagSeconds(deps), reportedLags(deps.database.db).catch(() => [])]);
  const known = reported.filter((r) => r.lag !== null);
  if (known.length > 0) {
    out.push(
      "# HELP instance_replica_lag_seconds Replica lag each instance reported in its last heartbeat, from this instance's copy of the heartbeat table.",
      "# TYPE instance_replica_lag_seconds gauge",
    );
    for (const r of known) out.push(`instance_replica_lag_seconds${labels({ instance_id: r.id, region: r.region })} ${r.lag}`);
  }
  if (lag === null) return;
  metric(out, "replica_lag_seconds", "gauge", "Age of the newest heartbeat in this instance's copy of the database (0 on the primary).", lag);
  metric(out, "heartbeat_interval_seconds", "gauge", "HEARTBEAT_INTERVAL: replica_lag_seconds is only meaningful above it.", heartbeatIntervalSeconds);
}
