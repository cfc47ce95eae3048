import type { Cache } from "../../platform/cache/port.ts";
import type { Database } from "../../platform/db/client.ts";
import type { CacheEntry } from "../../platform/http/cached-read.ts";
import type { Auth } from "../../platform/http/auth.ts";
import { q } from "../../platform/db/tx.ts";
import { mapStep } from "../../platform/db/step.ts";
import { notFound } from "../../platform/http/errors.ts";
import { invalidateUser, userKeys } from "../users/keys.ts";
import { usersRepo } from "../users/repository.ts";
import type { DetailPart } from "../users/service.ts";
import { DETAIL_POSTS, NewestPosts, type PostPublic } from "./model.ts";
import { postsRepo, toPostPublic } from "./repository.ts";

/** What the posts use cases need. */
export interface PostsDeps {
  database: Database;
  cache: Cache;
  /** The auth macro of the routes. */
  auth: Auth;
}

export interface PostsPage {
  items: PostPublic[];
  page: number;
  limit: number;
  total: number;
}

/** Writes a post as the user; the route allows only that user (auth level "owner"). */
export async function create(deps: PostsDeps, userId: number, title: string, content: string): Promise<PostPublic> {
  const row = await deps.database.write(function* (tx) {
    if (!(yield* q(usersRepo.exists(tx, userId)))) throw notFound(`User ${userId} not found`);
    const post = yield* q(postsRepo.insert(tx, userId, title, content));
    yield* q(usersRepo.touch(tx, userId));
    return post;
  });
  await invalidateUser(deps.cache, userId);
  return toPostPublic(row);
}

/**
 * Which pages go to Redis: the first few, at the sizes clients use. Other page/limit pairs stay in the bounded
 * L1 of the instance that read them, so that a caller walking through every pair cannot fill Redis with them.
 */
export const SHARED_PAGES = 5;
export const SHARED_LIMITS: readonly number[] = [10, 20, 50, 100];

/** The cache entry of one page of a user's posts; null when the user does not exist. */
export function pageEntry(deps: PostsDeps, userId: number, page: number, limit: number): CacheEntry<PostsPage> {
  return {
    key: userKeys.posts(userId, page, limit),
    tags: [userKeys.tag(userId)],
    shared: page <= SHARED_PAGES && SHARED_LIMITS.includes(limit),
    load: async (): Promise<PostsPage | null> => {
      const { db } = deps.database;
      if (!(await usersRepo.exists(db, userId))) return null;
      const { items, total } = await postsRepo.page(db, userId, page, limit);
      return { items: items.map(toPostPublic), page, limit, total };
    },
  };
}

/** A user's newest posts: the part of their detail this feature owns (the root hands it to the users feature). */
export function newestPostsPart(database: Pick<Database, "db">): DetailPart<typeof NewestPosts> {
  return {
    schema: NewestPosts,
    load: (userId) => mapStep(postsRepo.newest(database.db, userId, DETAIL_POSTS), (rows) => rows.map(toPostPublic)),
  };
}
