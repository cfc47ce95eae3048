import { Elysia } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
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
