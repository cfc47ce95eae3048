import { Elysia } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { IdParams, problems } from "../../platform/http/models.ts";
import { Preferences } from "../users/model.ts";
import { cachedJson } from "../users/index.ts";
import { PreferencesPatch } from "./model.ts";
import * as prefs from "./service.ts";

export function preferencesModule(deps: AppDeps) {
  return new Elysia({ prefix: "/users", tags: ["preferences"] })
    .use(authPlugin(deps.auth))
    .get("/:id/preferences", async ({ params }) => cachedJson(await prefs.get(deps, params.id)), {
      auth: "user",
      params: IdParams,
      response: { 200: Preferences, ...problems(401, 404, 422) },
      detail: { summary: "A user's preferences" },
    })
    .patch("/:id/preferences", ({ params, body, principal }) => prefs.update(deps, principal, params.id, body), {
      auth: "user",
      params: IdParams,
      body: PreferencesPatch,
      response: { 200: Preferences, ...problems(400, 401, 403, 404, 413, 422) },
      detail: { summary: "Merge preferences (owner or admin); null removes a key" },
    });
}
