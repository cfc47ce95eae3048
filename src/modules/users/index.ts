import { Elysia, t } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { IdParams, PageQuery, problems, responseHeaders } from "../../platform/http/models.ts";
import { RegisterBody, UpdateUserBody, UserDetail, UserPage, UserPublic } from "./model.ts";
import * as users from "./service.ts";
import type { CacheResult } from "../../platform/cache/port.ts";

/** A cached read answered with the JSON kept in the cache entry: a hit does no serialization. */
export function cachedJson(result: CacheResult<unknown>, extra: Record<string, string> = {}): Response {
  return new Response(result.json, {
    headers: { "content-type": "application/json", "x-cache": result.source, ...extra },
  });
}

/** The `x-cache` header of a cached read's 200, for the OpenAPI document. */
export const cachedRead = { 200: { description: "OK", headers: responseHeaders("x-cache") } };

export function usersModule(deps: AppDeps) {
  return new Elysia({ prefix: "/users", tags: ["users"] })
    .use(authPlugin(deps.auth))
    .model({ UserPublic, UserDetail, UserPage })
    .post("", async ({ body, set }) => {
      set.status = 201;
      return users.register(deps, body);
    }, {
      body: RegisterBody,
      response: { 201: UserPublic, ...problems(409) },
      detail: {
        operationId: "registerUser",
        summary: "Register an account",
        description: "Queues the welcome email, analytics and audit jobs.",
        responses: { 409: { description: "An account already has this email" } },
      },
    })
    .get("/me", async ({ principal }) => cachedJson(await users.getDetail(deps, principal.userId)), {
      auth: "user",
      response: { 200: UserDetail, ...problems(401, 404) },
      detail: {
        operationId: "getMyDetail",
        summary: "The caller's own detail",
        responses: { ...cachedRead, 404: { description: "The caller's account no longer exists" } },
      },
    })
    .get("/:id", async ({ params }) => cachedJson(await users.getDetail(deps, params.id)), {
      auth: "user",
      params: IdParams,
      response: { 200: UserDetail, ...problems(401, 404) },
      detail: {
        operationId: "getUserDetail",
        summary: "A user with their newest 10 posts and their preferences",
        responses: { ...cachedRead, 404: { description: "No user has this id" } },
      },
    })
    .get("", ({ query }) => users.list(deps, query.page ?? 1, query.limit ?? 10), {
      auth: "admin",
      query: PageQuery,
      response: { 200: UserPage, ...problems(401, 403) },
      detail: { operationId: "listUsers", summary: "All users, a page at a time (admin)" },
    })
    .patch("/:id", ({ params, body, principal }) => users.update(deps, principal, params.id, body), {
      auth: "user",
      params: IdParams,
      body: UpdateUserBody,
      response: { 200: UserPublic, ...problems(401, 403, 404, 409) },
      detail: {
        operationId: "updateUser",
        summary: "Update a user (owner or admin)",
        responses: {
          403: { description: "Neither the user nor an administrator" },
          404: { description: "No user has this id" },
          409: { description: "Another account has this email" },
        },
      },
    })
    .delete("/:id", async ({ params, principal, set }) => {
      await users.remove(deps, principal, params.id);
      set.status = 204;
    }, {
      auth: "user",
      params: IdParams,
      response: { 204: t.Void(), ...problems(401, 403, 404) },
      detail: {
        operationId: "deleteUser",
        summary: "Delete a user (owner or admin)",
        responses: { 403: { description: "Neither the user nor an administrator" }, 404: { description: "No user has this id" } },
      },
    });
}
