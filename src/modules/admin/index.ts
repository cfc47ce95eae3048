import { Elysia } from "elysia";
import type { CronView } from "../../platform/cron/scheduler.ts";
import type { Feature } from "../../platform/feature.ts";
import { authPlugin, type Auth } from "../../platform/http/auth.ts";
import type { JobQueue } from "../../platform/jobs/port.ts";
import { problems } from "../../platform/http/models.ts";
import { BulkPreferencesAccepted, BulkPreferencesBody, CronEntry, FailedJobs, FailedQuery } from "./model.ts";
import * as admin from "./service.ts";
import type { AdminDeps } from "./service.ts";
import { serviceUnavailable } from "../../platform/http/errors.ts";
import { t } from "elysia";

export interface AdminSlice extends AdminDeps {
  /** The auth macro of the routes. */
  auth: Auth;
  /** The schedules and their last runs (GET /admin/cron). */
  cron: CronView;
  queue: Pick<JobQueue, "listFailed">;
}

export function adminModule(deps: AdminSlice) {
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

/** Bulk preference updates, the cron schedules and the failed jobs (admin). */
export function adminFeature(slice: AdminSlice): Feature {
  return { name: "admin", routes: adminModule(slice) };
}
