import { Elysia } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { IdParams, problems } from "../../platform/http/models.ts";
import { Preferences } from "../users/model.ts";
import { cachedJson, cachedRead } from "../users/index.ts";
import { PreferencesPatch } from "./model.ts";
import * as prefs from "./service.ts";

export function preferencesModule(deps: AppDeps) {
  return new Elysia({ prefix: "/users", tags: ["preferences"] })
    .use(authPlugin(deps.auth))
    .model({ Preferences })
    .get("/:id/preferences", async ({ params }) => cachedJson(await prefs.get(deps, params.id)), {
      auth: "user",
      params: IdParams,
      response: { 200: Preferences, ...problems(401, 404) },
      detail: {
        operationId: "getPreferences",
        summary: "A user's preferences",
        responses: { ...cachedRead, 404: { description: "No user has this id" } },
      },
    })
    .patch("/:id/preferences", ({ params, body, principal }) => prefs.update(deps, principal, params.id, body), {
      auth: "user",
      params: IdParams,
      body: PreferencesPatch,
      response: { 200: Preferences, ...problems(401, 403, 404) },
      detail: {
        operationId: "updatePreferences",
        summary: "Merge preferences (owner or admin); null removes a key",
        responses: {
          200: { description: "The merged preferences" },
          403: { description: "Neither the user nor an administrator" },
          404: { description: "No user has this id" },
          422: { description: "A key or value did not validate, or the result would exceed 50 keys" },
        },
      },
    });
}
