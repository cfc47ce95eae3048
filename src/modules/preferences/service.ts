import type { Cache, CacheResult } from "../../platform/cache/port.ts";
import type { Database, Db } from "../../platform/db/client.ts";
import { readEntry, type CacheEntry } from "../../platform/http/cached-read.ts";
import type { Auth } from "../../platform/http/auth.ts";
import { q } from "../../platform/db/tx.ts";
import { notFound, unprocessable } from "../../platform/http/errors.ts";
import { invalidateUser, userKeys } from "../users/keys.ts";
import { usersRepo } from "../users/repository.ts";
import type { DetailPart } from "../users/service.ts";
import { MAX_PREFERENCE_KEYS, Preferences } from "./model.ts";
import { preferencesRepo } from "./repository.ts";

/** What the preferences use cases need. */
export interface PreferencesDeps {
  database: Database;
  cache: Cache;
  /** The auth macro of the routes. */
  auth: Auth;
}

/** A user's preferences: the part of their detail this feature owns (the root hands it to the users feature). */
export function preferencesPart(database: Pick<Database, "db">): DetailPart<typeof Preferences> {
  return { schema: Preferences, load: (userId) => preferencesRepo.get(database.db, userId) };
}

/** The cache entry of a user's preferences; null when the user does not exist. */
export function preferencesEntry(deps: PreferencesDeps, userId: number): CacheEntry<Preferences> {
  return {
    key: userKeys.preferences(userId),
    tags: [userKeys.tag(userId)],
    load: async (): Promise<Preferences | null> => {
      const { db } = deps.database;
      if (!(await usersRepo.exists(db, userId))) return null;
      return preferencesRepo.get(db, userId);
    },
  };
}

export async function get(deps: PreferencesDeps, userId: number): Promise<CacheResult<Preferences>> {
  const result = await readEntry(deps.cache, preferencesEntry(deps, userId));
  if (result.value === null) throw notFound(`User ${userId} not found`);
  return result as CacheResult<Preferences>;
}

/** Times kept for removed keys beyond this many keys in all: the oldest removals are forgotten first. */
const MAX_STAMPS = MAX_PREFERENCE_KEYS * 2;

/**
 * Merges `patch` into the stored preferences inside a write body (`yield* mergeInTx(...)`); null removes a key.
 * A user's write stamps its keys with the current time. A job's write (`acceptedAt`: when its request was
 * accepted) sets only the keys not written since that moment, and stamps them with it: a job never overwrites
 * a newer write, however late it runs or how often it is run again.
 */
export function* mergeInTx(
  tx: Db,
  userId: number,
  patch: Record<string, string | number | boolean | null>,
  opts: { acceptedAt?: number } = {},
): Generator<unknown, Preferences, unknown> {
  if (!(yield* q(usersRepo.exists(tx, userId)))) throw notFound(`User ${userId} not found`);
  const stored = yield* q(preferencesRepo.getStamped(tx, userId));
  // Maps, not objects: a key such as "__proto__" is a key like any other (on an object, assigning it would
  // set the prototype and drop the key).
  const merged = new Map(Object.entries(stored.data));
  const stamps = new Map(Object.entries(stored.keyWrittenAt));
  const at = opts.acceptedAt ?? Date.now();
  for (const [k, v] of Object.entries(patch)) {
    if (opts.acceptedAt !== undefined && (stamps.get(k) ?? -Infinity) > opts.acceptedAt) continue;
    if (v === null) merged.delete(k);
    else merged.set(k, v);
    stamps.set(k, Math.max(stamps.get(k) ?? 0, at));
  }
  if (merged.size > MAX_PREFERENCE_KEYS) {
    throw unprocessable([{ field: "body", message: `A user may have at most ${MAX_PREFERENCE_KEYS} preferences` }]);
  }
  const removed = [...stamps.keys()].filter((k) => !merged.has(k)).sort((a, b) => stamps.get(a)! - stamps.get(b)!);
  for (const k of removed.slice(0, Math.max(0, stamps.size - MAX_STAMPS))) stamps.delete(k);
  const result: Preferences = Object.fromEntries(merged);
  yield* q(preferencesRepo.put(tx, userId, result, Object.fromEntries(stamps)));
  return result;
}

export async function merge(
  deps: Pick<PreferencesDeps, "database" | "cache">,
  userId: number,
  patch: Record<string, string | number | boolean | null>,
  opts: { acceptedAt?: number } = {},
): Promise<Preferences> {
  const merged = await deps.database.write((tx) => mergeInTx(tx, userId, patch, opts));
  await invalidateUser(deps.cache, userId);
  return merged;
}
