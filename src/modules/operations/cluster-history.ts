// The last hour of every instance and of the cluster, a point a minute, from the summaries the instances' heartbeats
// carry (platform/observability/history-summary.ts): read from this instance's copy of the heartbeat table, so no
// call goes to another instance or region. Regions grouped, the primary first in its region.
import { listInstances } from "../../platform/cluster/instances.ts";
import type { Db } from "../../platform/db/client.ts";
import { clusterPoints, decodeSummary, SUMMARY_STEP_MS, summaryPoints } from "../../platform/observability/history-summary.ts";
import { round2 } from "../../platform/cluster/process-stats.ts";
import { isHealthy } from "../cluster/service.ts";

export async function clusterHistory(db: Db, heartbeatIntervalSeconds: number, now = Date.now()) {
  const rows = await listInstances(db).catch(() => []);
  rows.sort((a, b) => a.region.localeCompare(b.region) || (a.role === "primary" ? -1 : b.role === "primary" ? 1 : a.id.localeCompare(b.id)));
  const minutes = rows.map((r) => decodeSummary(r.history));
  return {
    step_seconds: SUMMARY_STEP_MS / 1000,
    cluster: clusterPoints(minutes, now),
    instances: rows.map((r, i) => ({
      id: r.id,
      region: r.region,
      role: r.role,
      healthy: isHealthy(r.lastHeartbeat, heartbeatIntervalSeconds, now),
      replica_lag_seconds: r.replicaLagSeconds === null ? null : round2(r.replicaLagSeconds),
      points: summaryPoints(minutes[i]!, now),
    })),
  };
}
