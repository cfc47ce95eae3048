// The cache keys of a user's reads (detail, posts pages, preferences) and the tag they all carry: a write that
// changes what any of them loads drops them all at once, here, in L2 and on every instance.
import type { Cache } from "../../platform/cache/port.ts";
import { keyMemo } from "../../platform/cache/key-memo.ts";

// Per id, the same strings every time (key-memo.ts): the detail and its tag are built on every cached read.
export const userKeys = {
  detail: keyMemo((id: number) => `user:${id}:detail`),
  posts: (id: number, page: number, limit: number) => `user:${id}:posts:${page}:${limit}`,
  preferences: keyMemo((id: number) => `user:${id}:prefs`),
  tag: keyMemo((id: number) => `user:${id}`),
};

/** Drops every cached read of the user; call it once the write that changed them has committed. */
export function invalidateUser(cache: Pick<Cache, "invalidateTags">, id: number): Promise<void> {
  return cache.invalidateTags([userKeys.tag(id)]);
}
