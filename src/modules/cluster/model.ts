import { t } from "elysia";
import { Int } from "../../platform/http/models.ts";
import { SUMMARY_MAX_CHARS } from "../../platform/observability/history-summary.ts";

export const InstanceStats = t.Object({
  id: t.String(),
  region: t.String(),
  role: t.String({ description: "primary or replica, as the instance saw itself at its last beat" }),
  host: t.String(),
  port: Int(),
  version: t.String(),
  started_at: t.String({ format: "date-time" }),
  last_heartbeat: t.String({ format: "date-time" }),
  seconds_since_heartbeat: t.Number(),
  healthy: t.Boolean({ description: "False once the instance has missed three heartbeats" }),
  in_flight: Int({ description: "Requests being served at the last beat" }),
  cpu_usage: t.Number({ description: "CPU % of the machine (all cores = 100) since the previous beat" }),
  memory_usage: t.Number({ description: "Resident memory as % of the machine's memory" }),
  load_score: t.Number({ description: "0.7 x in_flight + 0.3 x cpu_usage; lower is less loaded" }),
  replica_lag_seconds: t.Union([t.Number(), t.Null()], {
    description: "The instance's replica lag at its last beat: age of the newest heartbeat in its copy of the database (0 on the primary, null when unknown)",
  }),
});
export type InstanceStats = typeof InstanceStats.static;

export const ClusterStats = t.Object({
  total_instances: Int({ description: "Rows in the heartbeat table, healthy or not" }),
  healthy_instances: Int(),
  total_connections: Int({ description: "Sum of in-flight requests over healthy instances" }),
  average_cpu_usage: t.Number({ description: "Mean CPU % over healthy instances (0 when none)" }),
  average_memory_usage: t.Number({ description: "Mean memory % over healthy instances (0 when none)" }),
  least_loaded_instance: t.Union([t.String(), t.Null()], {
    description: "Id of the healthy instance with the lowest load_score, null when none is healthy",
  }),
  instances: t.Array(InstanceStats),
});
export type ClusterStats = typeof ClusterStats.static;

/** PUT /internal/instances/:id: a replica's heartbeat, relayed by the primary into the table. */
export const BeatBody = t.Object(
  {
    region: t.String({ minLength: 1, maxLength: 64 }),
    role: t.Union([t.Literal("primary"), t.Literal("replica")]),
    host: t.String({ minLength: 1, maxLength: 255 }),
    port: Int({ minimum: 0, maximum: 65535 }),
    version: t.String({ minLength: 1, maxLength: 64 }),
    started_at: t.String({ format: "date-time" }),
    in_flight: Int({ minimum: 0 }),
    cpu_percent: t.Number({ minimum: 0, maximum: 100 }),
    memory_percent: t.Number({ minimum: 0, maximum: 100 }),
    replica_lag_seconds: t.Optional(t.Union([t.Number({ minimum: 0 }), t.Null()])),
    history: t.Optional(t.Union([t.String({ maxLength: SUMMARY_MAX_CHARS }), t.Null()])),
  },
  { additionalProperties: false },
);

export const InstanceIdParams = t.Object({ id: t.String({ minLength: 1, maxLength: 128 }) });

export const PruneBody = t.Object(
  { max_age_seconds: Int({ minimum: 1, maximum: 30 * 86_400 }) },
  { additionalProperties: false },
);

/** POST /internal/cache/invalidate: cache keys and tags a process beside the instance changed (the users command). */
export const CacheInvalidateBody = t.Object(
  {
    keys: t.Array(t.String({ minLength: 1, maxLength: 512 }), { maxItems: 1_000 }),
    tags: t.Array(t.String({ minLength: 1, maxLength: 512 }), { maxItems: 1_000 }),
  },
  { additionalProperties: false },
);
