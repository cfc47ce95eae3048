import { Elysia } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import { BulkPreferencesAccepted, BulkPreferencesBody, CronEntry, FailedJobs, FailedQuery } from "./model.ts";
import * as admin from "./service.ts";
import { serviceUnavailable } from "../../platform/http/errors.ts";
import { t } from "elysia";

export function adminModule(deps: AppDeps) {
  return new Elysia({ prefix: "/admin", tags: ["admin"] })
    .use(authPlugin(deps.auth))
    .post("/preferences/bulk", async ({ body, set }) => {
      const accepted = await admin.bulkPreferences(deps, body.user_ids, body.preference_updates);
      set.status = 202;
      return accepted;
    }, {
      auth: "admin",
      body: BulkPreferencesBody,
      response: { 202: BulkPreferencesAccepted, ...problems(401, 403) },
      detail: {
        operationId: "bulkUpdatePreferences",
        summary: "Queue a preference update for many users (admin)",
        description: "One update_user_preferences job per user; poll them with /jobs/status.",
        responses: { 422: { description: "The request did not validate, or some user ids do not exist (`errors` lists them)" } },
      },
    })
    .get("/cron", async () => {
      try {
        return await deps.cron.list();
      } catch {
        throw serviceUnavailable("Cron run records are unreachable; retry later");
      }
    }, {
      auth: "admin",
      response: { 200: t.Array(CronEntry), ...problems(401, 403, 503) },
      detail: { operationId: "listCronSchedules", summary: "The cron schedules, their last run and their next tick (admin)" },
    })
    .get("/jobs/failed", async ({ query }) => {
      try {
        return await deps.queue.listFailed(query.limit ?? 50);
      } catch {
        throw serviceUnavailable("The job queue is unreachable; retry later");
      }
    }, {
      auth: "admin",
      query: FailedQuery,
      response: { 200: FailedJobs, ...problems(401, 403, 503) },
      detail: { operationId: "listFailedJobs", summary: "Failed jobs kept for inspection, newest first, with their last error (admin)" },
    });
}
