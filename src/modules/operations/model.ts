import { t } from "elysia";
import { Int } from "../../platform/http/models.ts";
import { Job } from "../jobs/model.ts";

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

export const BreakerState = t.Object({
  dependency: t.String(),
  state: t.Union([t.Literal("closed"), t.Literal("open"), t.Literal("half_open")]),
  since: Nullable(t.String({ format: "date-time" })),
  failures: Int({ minimum: 0 }),
  rejected: Int({ minimum: 0 }),
  opened_total: Int({ minimum: 0 }),
  managed: t.Boolean({ description: "False for a breaker kept outside the registry and reported by it (the Redis L2's own)" }),
});

export const ScalerDecision = t.Object({
  id: Int(),
  at: t.String({ format: "date-time" }),
  region: t.String(),
  from: Int({ minimum: 0 }),
  to: Int({ minimum: 0 }),
  action: t.String({ description: "up, down or hold" }),
  reason: t.String(),
  outcome: t.String({ description: "ok, dry-run, error or blocked" }),
  detail: Nullable(t.String()),
  instance: t.String(),
});

export const JobRuns = t.Object({
  type: t.String(),
  completed: Int({ minimum: 0 }),
  retry: Int({ minimum: 0 }),
  deferred: Int({ minimum: 0 }),
  failed: Int({ minimum: 0 }),
});

export const TypeCounts = t.Object({
  type: t.String(),
  waiting: Int({ minimum: 0 }),
  delayed: Int({ minimum: 0 }),
  running: Int({ minimum: 0, description: "Running anywhere in the cluster (with Redis), not only here" }),
  failed: Int({ minimum: 0, description: "Failed jobs still retained" }),
});

export const HistoryPoint = t.Object({
  t: t.String({ format: "date-time" }),
  rps: Nullable(t.Number({ description: "Null in a minute the instance reported nothing" })),
  p50_ms: Nullable(t.Number()),
  p99_ms: Nullable(t.Number()),
  error_rate: Nullable(t.Number()),
  cache_hit_ratio: Nullable(t.Number()),
  queue_depth: Nullable(t.Number()),
});

export const InstanceHistory = t.Object({
  id: t.String(),
  region: t.String(),
  role: t.String(),
  healthy: t.Boolean(),
  replica_lag_seconds: Nullable(t.Number({ description: "As the instance reported it in its last heartbeat" })),
  points: t.Array(HistoryPoint, { description: "The last hour, a point a minute, oldest first" }),
});

export const Operations = t.Object({
  instance_id: t.String(),
  region: t.String(),
  replica_lag_seconds: Nullable(t.Number({ description: "Age of the newest heartbeat in this instance's copy of the database (0 on the primary)" })),
  breakers: t.Array(BreakerState),
  scaler: t.Object({
    mode: t.String(),
    enabled: t.Boolean({ description: "False when off, or without FLY_API_TOKEN / FLY_APP_NAME" }),
    interval_seconds: Int(),
    decisions: t.Array(ScalerDecision, { description: "Newest first" }),
  }),
  jobs: t.Object({
    available: t.Boolean(),
    waiting: Nullable(Int()),
    delayed: Nullable(Int()),
    running_here: Nullable(Int()),
    failed: Nullable(Int()),
    by_type: t.Array(TypeCounts, { description: "Jobs per type and state, read from the queue for this call" }),
    by_type_complete: t.Boolean({ description: "False when a state held more jobs than are read per call: its oldest were counted" }),
    runs_here_by_type: t.Array(JobRuns, { description: "Handler runs on this instance since it started, by outcome" }),
    failed_jobs: t.Array(Job, { description: "Retained failed jobs, newest first" }),
  }),
  history: t.Object({ step_seconds: Int(), points: t.Array(HistoryPoint) }, { description: "This instance's last hour at its own step" }),
  cluster_history: t.Object(
    {
      step_seconds: Int(),
      cluster: t.Array(HistoryPoint, { description: "Rates and counts added up over the instances; latency quantiles from their summed buckets; the largest queue depth" }),
      instances: t.Array(InstanceHistory, { description: "From the heartbeat table: regions in order, the primary first in its region" }),
    },
    { description: "Every instance's last hour as its heartbeats carry it, and the cluster's" },
  ),
});

export const RetriedJob = t.Object({ job_id: t.String({ description: "The new job's id" }), retried: t.String({ description: "The failed job's id" }) });
