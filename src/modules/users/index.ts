import { Elysia, t } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { IdParams, page, PageQuery, problems } from "../../platform/http/models.ts";
import { RegisterBody, UpdateUserBody, UserDetail, UserPublic } from "./model.ts";
import * as users from "./service.ts";
import type { CacheResult } from "../../platform/cache/port.ts";

/** A cached read answered with the JSON kept in the cache entry: a hit does no serialization. */
export function cachedJson(result: CacheResult<unknown>, extra: Record<string, string> = {}): Response {
  return new Response(result.json, {
    headers: { "content-type": "application/json", "x-cache": result.source, ...extra },
  });
}

export function usersModule(deps: AppDeps) {
  return new Elysia({ prefix: "/users", tags: ["users"] })
    .use(authPlugin(deps.auth))
    .model({ UserPublic, UserDetail })
    .post("", async ({ body, set }) => {
      set.status = 201;
      return users.register(deps, body);
    }, {
      body: RegisterBody,
      response: { 201: "UserPublic", ...problems(400, 409, 413, 422) },
      detail: { summary: "Register an account", description: "Queues the welcome email, analytics and audit jobs." },
    })
    .get("/me", async ({ principal, set }) => cachedJson(await users.getDetail(deps, principal.userId)), {
      auth: "user",
      response: { 200: "UserDetail", ...problems(401, 404) },
      detail: { summary: "The caller's own detail" },
    })
    .get("/:id", async ({ params }) => cachedJson(await users.getDetail(deps, params.id)), {
      auth: "user",
      params: IdParams,
      response: { 200: "UserDetail", ...problems(401, 404, 422) },
      detail: { summary: "A user with their newest 10 posts and their preferences" },
    })
    .get("", ({ query }) => users.list(deps, query.page ?? 1, query.limit ?? 10), {
      auth: "admin",
      query: PageQuery,
      response: { 200: page(UserPublic), ...problems(401, 403, 422) },
      detail: { summary: "All users, a page at a time (admin)" },
    })
    .patch("/:id", ({ params, body, principal }) => users.update(deps, principal, params.id, body), {
      auth: "user",
      params: IdParams,
      body: UpdateUserBody,
      response: { 200: "UserPublic", ...problems(400, 401, 403, 404, 409, 413, 422) },
      detail: { summary: "Update a user (owner or admin)" },
    })
    .delete("/:id", async ({ params, principal, set }) => {
      await users.remove(deps, principal, params.id);
      set.status = 204;
    }, {
      auth: "user",
      params: IdParams,
      response: { 204: t.Void(), ...problems(401, 403, 404, 422) },
      detail: { summary: "Delete a user (owner or admin)" },
    });
}
