import { integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
});
