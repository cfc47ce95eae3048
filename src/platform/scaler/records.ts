// The scaler's decisions in the database (scaler_decisions): what the dashboard lists, and where the cooldowns
// are read from, so they hold across a handover of the cron lease to another instance.
import { and, desc, inArray, lt, max, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { q } from "../db/tx.ts";
import { scalerDecisions } from "../db/schema/index.ts";

export type DecisionRow = typeof scalerDecisions.$inferSelect;
export type NewDecision = typeof scalerDecisions.$inferInsert;

/** Rows kept; older ones are deleted after each run. */
export const KEEP_DECISIONS = 1_000;

/** A write body: `database.write((tx) => recordDecisions(tx, rows))`. */
export function* recordDecisions(db: Db, rows: NewDecision[]): Generator<unknown, void, unknown> {
  if (rows.length === 0) return;
  yield* q(db.insert(scalerDecisions).values(rows).run());
  const [edge] = yield* q(db.select({ id: scalerDecisions.id }).from(scalerDecisions).orderBy(desc(scalerDecisions.id)).limit(1).offset(KEEP_DECISIONS).all());
  if (edge) yield* q(db.delete(scalerDecisions).where(lt(scalerDecisions.id, edge.id + 1)).run());
}

export async function recentDecisions(db: Db, limit: number): Promise<DecisionRow[]> {
  return db.select().from(scalerDecisions).orderBy(desc(scalerDecisions.id)).limit(limit);
}

/** When each region last changed size (or would have, in dry-run): the cooldowns count from there. */
export async function lastChanges(db: Db): Promise<Map<string, number>> {
  const rows = await db
    .select({ region: scalerDecisions.region, at: max(scalerDecisions.at) })
    .from(scalerDecisions)
    .where(and(inArray(scalerDecisions.outcome, ["ok", "dry-run"]), sql`${scalerDecisions.action} <> 'hold'`))
    .groupBy(scalerDecisions.region);
  return new Map(rows.filter((r) => r.at).map((r) => [r.region, Date.parse(r.at!)]));
}
