// Helpers for repository calls whose result is a value on bun:sqlite and a promise on libSQL (see tx.ts).
import { Database as BunDatabase } from "bun:sqlite";
import type { Db } from "./client.ts";
import type { Step } from "./tx.ts";

export type { Step } from "./tx.ts";

/** Applies `f` to a step's result without adding a promise where there was none. */
export function mapStep<T, U>(step: Step<T>, f: (v: T) => U): Step<U> {
  return step instanceof Promise ? step.then(f) : f(step as T);
}

/**
 * Memoizes what `build` makes for each handle: on bun:sqlite the database is one long-lived handle, so the
 * statements are prepared once; on libSQL a transaction is its own handle and gets its own statements.
 */
export function preparedFor<S>(build: (db: Db) => S): (db: Db) => S {
  const cache = new WeakMap<object, S>();
  return (db) => {
    let s = cache.get(db);
    if (s === undefined) {
      s = build(db);
      cache.set(db, s);
    }
    return s;
  };
}

/** The bun:sqlite connection behind a handle, or null on libSQL (statement.ts prepares Drizzle's SQL on it). */
export function sqliteOf(db: Db): BunDatabase | null {
  const client = (db as { $client?: unknown }).$client;
  return client instanceof BunDatabase ? client : null;
}
