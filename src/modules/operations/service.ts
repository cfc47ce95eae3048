// What the dashboard's operations panels read in one call: breakers, the scaler's last decisions, the job queue
// (counts in total and per type, failed jobs, this instance's runs by type), this instance's last hour and
// every instance's and the cluster's, a point a minute. Plus the failed-job
// actions, logged as an audit line with the admin who took them.
import type { Role } from "../../platform/cluster/role.ts";
import type { Database } from "../../platform/db/client.ts";
import type { JobQueue } from "../../platform/jobs/port.ts";
import type { History } from "../../platform/observability/history.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import type { OpsMetrics } from "../../platform/observability/ops-metrics.ts";
import type { Breakers } from "../../platform/resilience/breakers.ts";
import { replicaLagSeconds } from "../../platform/cluster/lag.ts";
import { HISTORY_STEP_MS } from "../../platform/observability/history.ts";
import { clusterHistory } from "./cluster-history.ts";
import { recentDecisions } from "../../platform/scaler/records.ts";
import { valueWithin, type JobRunOutcome } from "../../platform/observability/ops-metrics.ts";

const FAILED_SHOWN = 50;
const DECISIONS_SHOWN = 20;

/** What the operations view and the failed-job actions need. */
export interface OperationsDeps {
  queue: Pick<JobQueue, "stats" | "countsByType" | "listFailed" | "retryFailed" | "discardFailed">;
  database: Database;
  role: Role;
  breakers: Pick<Breakers, "list">;
  opsMetrics: Pick<OpsMetrics, "jobDuration">;
  history: Pick<History, "points">;
  /** The audit lines of the actions. */
  logger: Logger;
  config: {
    INSTANCE_ID: string;
    FLY_REGION: string;
    SCALER_MODE: "off" | "dry-run" | "on";
    SCALER_INTERVAL: number;
    /** The health rule of each instance's row (three missed beats). */
    HEARTBEAT_INTERVAL: number;
    /** Only whether they are set: the scaler acts only with both. */
    FLY_API_TOKEN?: string;
    FLY_APP_NAME?: string;
  };
}

export async function operations(deps: OperationsDeps) {
  const { config } = deps;
  const [stats, byType, failedJobs, decisions, lag, cluster] = await Promise.all([
    valueWithin(deps.queue.stats(), 1_000),
    valueWithin(deps.queue.countsByType(), 1_000),
    valueWithin(deps.queue.listFailed(FAILED_SHOWN), 1_000),
    recentDecisions(deps.database.db, DECISIONS_SHOWN).catch(() => []),
    replicaLagSeconds(deps),
    clusterHistory(deps.database.db, config.HEARTBEAT_INTERVAL),
  ]);
  const runs = new Map<string, Record<JobRunOutcome, number>>();
  for (const { labels, value } of deps.opsMetrics.jobDuration.counts()) {
    const row = runs.get(labels.type!) ?? { completed: 0, retry: 0, deferred: 0, failed: 0 };
    row[labels.outcome as JobRunOutcome] += value;
    runs.set(labels.type!, row);
  }
  return {
    instance_id: config.INSTANCE_ID,
    region: config.FLY_REGION,
    replica_lag_seconds: lag,
    breakers: deps.breakers.list(),
    scaler: {
      mode: config.SCALER_MODE,
      enabled: config.SCALER_MODE !== "off" && Boolean(config.FLY_API_TOKEN && config.FLY_APP_NAME),
      interval_seconds: config.SCALER_INTERVAL,
      decisions: decisions.map((d) => ({
        id: d.id, at: d.at, region: d.region, from: d.fromCount, to: d.toCount, action: d.action, reason: d.reason, outcome: d.outcome, detail: d.detail, instance: d.instance,
      })),
    },
    jobs: {
      available: stats !== null,
      waiting: stats?.waiting ?? null,
      delayed: stats?.delayed ?? null,
      running_here: stats?.running_here ?? null,
      failed: stats?.failed ?? null,
      by_type: byType?.types ?? [],
      by_type_complete: byType?.complete ?? false,
      runs_here_by_type: [...runs].map(([type, r]) => ({ type, ...r })).sort((a, b) => a.type.localeCompare(b.type)),
      failed_jobs: failedJobs ?? [],
    },
    history: { step_seconds: HISTORY_STEP_MS / 1000, points: deps.history.points() },
    cluster_history: cluster,
  };
}

export function audit(deps: Pick<OperationsDeps, "logger">, action: "retry" | "discard", by: number, jobId: string, extra: Record<string, unknown> = {}): void {
  deps.logger.info("admin action on a failed job", { audit: true, action, job_id: jobId, by_user: by, ...extra });
}
