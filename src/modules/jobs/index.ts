import { Elysia } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import { Job, JobParams, JobStatusBody, JobStatusMap } from "./model.ts";
import * as jobs from "./service.ts";

export function jobsModule(deps: AppDeps) {
  return new Elysia({ prefix: "/jobs", tags: ["jobs"] })
    .use(authPlugin(deps.auth))
    .model({ Job })
    .get("/:id", ({ params }) => jobs.getJob(deps, params.id), {
      auth: "admin",
      params: JobParams,
      response: { 200: "Job", ...problems(401, 403, 404, 422, 503) },
      detail: { summary: "A background job (admin)" },
    })
    .post("/status", ({ body }) => jobs.statusOf(deps, body.job_ids), {
      auth: "admin",
      body: JobStatusBody,
      response: { 200: JobStatusMap, ...problems(400, 401, 403, 413, 422, 503) },
      detail: { summary: "Several jobs at once (admin); unknown ids answer {status: \"not_found\"}" },
    });
}
