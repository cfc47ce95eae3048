import { index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** The heartbeat registry: one row per running instance. */
export const instances = sqliteTable("instances", {
  id: text("id").primaryKey(),
  region: text("region").notNull(),
  role: text("role").notNull(),
  host: text("host").notNull(),
  port: integer("port").notNull(),
  version: text("version").notNull(),
  startedAt: text("started_at").notNull(),
  lastHeartbeat: text("last_heartbeat").notNull(),
  inFlight: integer("in_flight").notNull().default(0),
  cpuPercent: real("cpu_percent").notNull().default(0),
  memoryPercent: real("memory_percent").notNull().default(0),
  /** The instance's own replica lag at its last beat (0 on the primary; null when unknown). */
  replicaLagSeconds: real("replica_lag_seconds"),
  /** Its last hour, a point a minute, as it sent it (observability/history-summary.ts); null when it keeps none. */
  history: text("history"),
});

/** Every decision the scaler took (or was kept from taking), newest last; pruned to the most recent rows. */
export const scalerDecisions = sqliteTable(
  "scaler_decisions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: text("at").notNull(),
    region: text("region").notNull(),
    fromCount: integer("from_count").notNull(),
    toCount: integer("to_count").notNull(),
    /** up, down or hold (a change wanted but not made: stale data, cooldown, the API unreachable). */
    action: text("action").notNull(),
    reason: text("reason").notNull(),
    /** ok, dry-run, error or blocked. */
    outcome: text("outcome").notNull(),
    detail: text("detail"),
    instance: text("instance").notNull(),
  },
  (t) => [index("scaler_decisions_region_at").on(t.region, t.at)],
);
