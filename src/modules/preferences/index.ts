import { Elysia } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { notFound } from "../../platform/http/errors.ts";
import { cachedRead, mountCachedRead } from "../../platform/http/cached-read.ts";
import { declaredWrite, mountWrite } from "../../platform/http/declared-write.ts";
import { IdParams, problems } from "../../platform/http/models.ts";
import { Preferences, PreferencesPatch } from "./model.ts";
import { mountedCachedReads, type Feature } from "../../platform/feature.ts";
import { preferencesJobs } from "./jobs.ts";
import * as prefs from "./service.ts";
import type { PreferencesDeps } from "./service.ts";

export const preferencesRead = (deps: PreferencesDeps) =>
  cachedRead({
    path: "/:id/preferences",
    auth: "user",
    params: IdParams,
    response: Preferences,
    problems: [401, 404],
    detail: {
      operationId: "getPreferences",
      summary: "A user's preferences",
      responses: { 404: { description: "No user has this id" } },
    },
    entry: ({ params }) => prefs.preferencesEntry(deps, params.id),
    missing: ({ params }) => notFound(`User ${params.id} not found`),
  });

export const updatePreferencesWrite = (deps: PreferencesDeps) =>
  declaredWrite({
    method: "PATCH",
    path: "/:id/preferences",
    auth: "owner-or-admin",
    params: IdParams,
    body: PreferencesPatch,
    status: 200,
    response: Preferences,
    problems: [401, 403, 404],
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
    handle: ({ params, body }) => prefs.merge(deps, params.id, body),
  });

export function preferencesModule(deps: PreferencesDeps) {
  const app = new Elysia({ prefix: "/users", tags: ["preferences"] })
    .use(authPlugin(deps.auth))
    .model({ Preferences });
  return mountWrite(mountCachedRead(app, preferencesRead(deps), deps.cache), updatePreferencesWrite(deps));
}

/** A user's preferences: the cached read, the merge, and the job that merges for the admin's bulk update. */
export function preferencesFeature(slice: PreferencesDeps): Feature {
  const routes = preferencesModule(slice);
  return { name: "preferences", routes, cachedReads: mountedCachedReads(routes), jobs: preferencesJobs(slice) };
}
