import type { AppDeps } from "../../deps.ts";
import { cacheKeys, type CacheResult } from "../../platform/cache/port.ts";
import type { Principal } from "../../platform/http/auth.ts";
import { q } from "../../platform/db/tx.ts";
import { notFound, unprocessable } from "../../platform/http/errors.ts";
import type { Preferences } from "../users/model.ts";
import { preferencesRepo, usersRepo, type Tx } from "../users/repository.ts";
import { assertOwnerOrAdmin } from "../users/service.ts";
import { MAX_PREFERENCE_KEYS } from "./model.ts";

export async function get(deps: AppDeps, userId: number): Promise<CacheResult<Preferences>> {
  const result = await deps.cache.getOrSet(
    cacheKeys.userPreferences(userId),
    async (): Promise<Preferences | null> => {
      const { db } = deps.database;
      if (!(await usersRepo.exists(db, userId))) return null;
      return preferencesRepo.get(db, userId);
    },
    { tags: [cacheKeys.userTag(userId)] },
  );
  if (result.value === null) throw notFound(`User ${userId} not found`);
  return result as CacheResult<Preferences>;
}

/** Merges `patch` into the stored preferences inside a write body (`yield* mergeInTx(...)`); null removes a key. */
export function* mergeInTx(tx: Tx, userId: number, patch: Record<string, string | number | boolean | null>): Generator<unknown, Preferences, unknown> {
  if (!(yield* q(usersRepo.exists(tx, userId)))) throw notFound(`User ${userId} not found`);
  const merged: Preferences = { ...(yield* q(preferencesRepo.get(tx, userId))) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  if (Object.keys(merged).length > MAX_PREFERENCE_KEYS) {
    throw unprocessable([{ field: "body", message: `A user may have at most ${MAX_PREFERENCE_KEYS} preferences` }]);
  }
  yield* q(preferencesRepo.put(tx, userId, merged));
  return merged;
}

export async function merge(deps: AppDeps, userId: number, patch: Record<string, string | number | boolean | null>): Promise<Preferences> {
  const merged = await deps.database.write((tx) => mergeInTx(tx, userId, patch));
  await deps.cache.invalidateTags([cacheKeys.userTag(userId)]);
  return merged;
}

export async function update(deps: AppDeps, principal: Principal, userId: number, patch: Record<string, string | number | boolean | null>) {
  assertOwnerOrAdmin(principal, userId);
  return merge(deps, userId, patch);
}
