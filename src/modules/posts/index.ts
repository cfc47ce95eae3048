import { Elysia } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { notFound } from "../../platform/http/errors.ts";
import { cachedRead, mountCachedRead } from "../../platform/http/cached-read.ts";
import { declaredWrite, mountWrite } from "../../platform/http/declared-write.ts";
import { IdParams, PageQuery, problems } from "../../platform/http/models.ts";
import { CreatePostBody, PostPage, PostPublic } from "./model.ts";
import { mountedCachedReads, type Feature } from "../../platform/feature.ts";
import * as posts from "./service.ts";
import type { PostsDeps } from "./service.ts";

export const postsPageRead = (deps: PostsDeps) =>
  cachedRead({
    path: "/:id/posts",
    auth: "user",
    params: IdParams,
    query: PageQuery,
    response: PostPage,
    problems: [401, 404],
    detail: {
      operationId: "listUserPosts",
      summary: "A user's posts, newest first",
      responses: { 404: { description: "No user has this id" } },
    },
    entry: ({ params, query }) => posts.pageEntry(deps, params.id, query.page ?? 1, query.limit ?? 10),
    missing: ({ params }) => notFound(`User ${params.id} not found`),
  });

export const createPostWrite = (deps: PostsDeps) =>
  declaredWrite({
    method: "POST",
    path: "/:id/posts",
    auth: "owner",
    params: IdParams,
    body: CreatePostBody,
    status: 201,
    response: PostPublic,
    problems: [401, 403, 404],
    detail: {
      operationId: "createPost",
      summary: "Write a post (owner)",
      responses: { 403: { description: "Only the user may post as themselves" }, 404: { description: "No user has this id" } },
    },
    handle: ({ params, body }) => posts.create(deps, params.id, body.title, body.content),
  });

export function postsModule(deps: PostsDeps) {
  const app = new Elysia({ prefix: "/users", tags: ["posts"] })
    .use(authPlugin(deps.auth))
    .model({ PostPublic, PostPage });
  return mountCachedRead(mountWrite(app, createPostWrite(deps)), postsPageRead(deps), deps.cache);
}

/** A user's posts: writing one, and the cached pages of them. */
export function postsFeature(slice: PostsDeps): Feature {
  const routes = postsModule(slice);
  return { name: "posts", routes, cachedReads: mountedCachedReads(routes) };
}
