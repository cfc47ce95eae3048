// SQL for the heartbeat registry (the `instances` table). Only ever run where writes are possible: on the
// primary, or on the primary on behalf of a replica through the /internal routes.
import { asc, lt, eq, max } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { mapStep, type Step } from "../db/step.ts";
import { instances } from "../db/schema/index.ts";

export type InstanceRow = typeof instances.$inferSelect;

/** What an instance reports about itself on each beat. `lastHeartbeat` is stamped by the writer's clock. */
export interface InstanceBeat {
  id: string;
  region: string;
  role: "primary" | "replica";
  host: string;
  port: number;
  version: string;
  startedAt: string;
  inFlight: number;
  cpuPercent: number;
  memoryPercent: number;
  /** Absent (as from a replica of the previous version): stored as null. */
  replicaLagSeconds?: number | null;
  history?: string | null;
}

// The writes return a Step (a value on bun:sqlite, a promise on libSQL) so they run inside `database.write`,
// which retries off the event loop while another process (the local cluster mode) holds the write lock.

/** Registers the instance or refreshes its row: the first beat and every later one are the same upsert. */
export function upsertInstance(db: Db, beat: InstanceBeat, now = new Date()): Step<unknown> {
  const row = { ...beat, replicaLagSeconds: beat.replicaLagSeconds ?? null, history: beat.history ?? null, lastHeartbeat: now.toISOString() };
  const { id: _id, ...update } = row;
  return db.insert(instances).values(row).onConflictDoUpdate({ target: instances.id, set: update }).run();
}

export function removeInstance(db: Db, id: string): Step<boolean> {
  return mapStep(db.delete(instances).where(eq(instances.id, id)).returning({ id: instances.id }).all(), (r) => r.length > 0);
}

/** Deletes instances whose last heartbeat is older than `maxAgeMs`; returns how many. */
export function removeInstancesNotSeenSince(db: Db, maxAgeMs: number, now = new Date()): Step<number> {
  // ISO 8601 UTC strings from toISOString() sort like the instants they name.
  const cutoff = new Date(now.getTime() - maxAgeMs).toISOString();
  return mapStep(db.delete(instances).where(lt(instances.lastHeartbeat, cutoff)).returning({ id: instances.id }).all(), (r) => r.length);
}

export async function listInstances(db: Db): Promise<InstanceRow[]> {
  return db.select().from(instances).orderBy(asc(instances.region), asc(instances.id));
}

/**
 * Seconds between now and the newest heartbeat this database holds. The primary stamps every beat (its own and
 * the replicas'), so on a replica it is how far the local copy trails the primary, give or take one interval.
 */
export async function heartbeatAgeSeconds(db: Db, now = Date.now()): Promise<number | null> {
  const [row] = await db.select({ newest: max(instances.lastHeartbeat) }).from(instances);
  if (!row?.newest) return null;
  return Math.max(0, (now - Date.parse(row.newest)) / 1000);
}

/** Each instance's replica lag as its last heartbeat reported it (the history column is left unread). */
export async function reportedLags(db: Db): Promise<{ id: string; region: string; lag: number | null }[]> {
  return db.select({ id: instances.id, region: instances.region, lag: instances.replicaLagSeconds }).from(instances).orderBy(asc(instances.region), asc(instances.id));
}
