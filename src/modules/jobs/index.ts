import { Elysia } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import { Job, JobParams, JobStatusBody, JobStatusMap } from "./model.ts";
import type { Auth } from "../../platform/http/auth.ts";
import { boundSchedule, type Feature } from "../../platform/feature.ts";
import { jobDefinitions, type JobHandlersDeps } from "./handlers.ts";
import { SCHEDULES, type SchedulesDeps } from "./schedules.ts";
import * as jobs from "./service.ts";
import type { JobsDeps } from "./service.ts";

export interface JobsSlice extends JobsDeps, JobHandlersDeps, SchedulesDeps {
  /** The auth macro of the routes. */
  auth: Auth;
}

export function jobsModule(deps: JobsDeps & { auth: Auth }) {
  return new Elysia({ prefix: "/jobs", tags: ["jobs"] })
    .use(authPlugin(deps.auth))
    .model({ Job })
    .get("/:id", ({ params }) => jobs.getJob(deps, params.id), {
      auth: "admin",
      params: JobParams,
      response: { 200: Job, ...problems(401, 403, 404, 503) },
      detail: {
        operationId: "getJob",
        summary: "A background job (admin)",
        responses: { 404: { description: "No job has this id (or it was removed after its retention)" } },
      },
    })
    .post("/status", ({ body }) => jobs.statusOf(deps, body.job_ids), {
      auth: "admin",
      body: JobStatusBody,
      response: { 200: JobStatusMap, ...problems(401, 403, 503) },
      detail: { operationId: "getJobStatuses", summary: "Several jobs at once (admin); unknown ids answer {status: \"not_found\"}" },
    });
}

/** The session cleanup (a job type and a schedule), instance pruning, the job status routes. */
export function jobsFeature(slice: JobsSlice): Feature {
  return {
    name: "jobs",
    routes: jobsModule(slice),
    jobs: jobDefinitions(slice),
    schedules: SCHEDULES.map((s) => boundSchedule(s, slice)),
  };
}
