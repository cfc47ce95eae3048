import { Elysia } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { IdParams, PageQuery, problems } from "../../platform/http/models.ts";
import { PostPage, PostPublic } from "../users/model.ts";
import { cachedJson, cachedRead } from "../users/index.ts";
import { CreatePostBody } from "./model.ts";
import * as posts from "./service.ts";

export function postsModule(deps: AppDeps) {
  return new Elysia({ prefix: "/users", tags: ["posts"] })
    .use(authPlugin(deps.auth))
    .model({ PostPublic, PostPage })
    .post("/:id/posts", async ({ params, body, principal, set }) => {
      set.status = 201;
      return posts.create(deps, principal, params.id, body.title, body.content);
    }, {
      auth: "user",
      params: IdParams,
      body: CreatePostBody,
      response: { 201: PostPublic, ...problems(401, 403, 404) },
      detail: {
        operationId: "createPost",
        summary: "Write a post (owner)",
        responses: { 403: { description: "Only the user may post as themselves" }, 404: { description: "No user has this id" } },
      },
    })
    .get("/:id/posts", async ({ params, query }) => cachedJson(await posts.list(deps, params.id, query.page ?? 1, query.limit ?? 10)), {
      auth: "user",
      params: IdParams,
      query: PageQuery,
      response: { 200: PostPage, ...problems(401, 404) },
      detail: {
        operationId: "listUserPosts",
        summary: "A user's posts, newest first",
        responses: { ...cachedRead, 404: { description: "No user has this id" } },
      },
    });
}
