// The cache keys of a user's reads (detail, posts pages, preferences) and the tag they all carry: a write that
// changes what any of them loads drops them all at once, here, in L2 and on every instance.
import type { Cache } from "../../platform/cache/port.ts";

export const userKeys = {
  detail: (id: number) => `user:${id}:detail`,
  posts: (id: number, page: number, limit: number) => `user:${id}:posts:${page}:${limit}`,
  preferences: (id: number) => `user:${id}:prefs`,
  tag: (id: number) => `user:${id}`,
};

/** Drops every cached read of the user; call it once the write that changed them has committed. */
export function invalidateUser(cache: Pick<Cache, "invalidateTags">, id: number): Promise<void> {
  return cache.invalidateTags([userKeys.tag(id)]);
}
