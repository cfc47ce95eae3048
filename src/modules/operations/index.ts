// The operations data behind the dashboard (admin): GET /admin/operations, and retry or discard of a failed job.
import { Elysia, t } from "elysia";
import type { Feature } from "../../platform/feature.ts";
import { authPlugin, type Auth } from "../../platform/http/auth.ts";
import { notFound, serviceUnavailable } from "../../platform/http/errors.ts";
import { problems } from "../../platform/http/models.ts";
import { JobParams } from "../jobs/model.ts";
import { Operations, RetriedJob } from "./model.ts";
import { audit, operations, type OperationsDeps } from "./service.ts";

export interface OperationsSlice extends OperationsDeps {
  /** The auth macro of the routes. */
  auth: Auth;
}

const gone = (id: string) => notFound(`Job ${id} is not a retained failed job (already retried, discarded or expired)`);

export function operationsModule(deps: OperationsSlice) {
  return new Elysia({ prefix: "/admin", tags: ["admin"] })
    .use(authPlugin(deps.auth))
    .get("/operations", () => operations(deps), {
      auth: "admin",
      response: { 200: Operations, ...problems(401, 403) },
      detail: { operationId: "getOperations", summary: "Breakers, scaler decisions, job queue and this instance's last hour (admin)" },
    })
    .post("/jobs/:id/retry", async ({ params, principal }) => {
      let next: string | null;
      try {
        next = await deps.queue.retryFailed(params.id);
      } catch {
        throw serviceUnavailable("The job queue is unreachable; retry later");
      }
      if (!next) throw gone(params.id);
      audit(deps, "retry", principal.userId, params.id, { new_job_id: next });
      return { job_id: next, retried: params.id };
    }, {
      auth: "admin",
      params: JobParams,
      response: { 200: RetriedJob, ...problems(401, 403, 404, 503) },
      detail: { operationId: "retryFailedJob", summary: "Run a failed job again as a new job (admin; audited)" },
    })
    .post("/jobs/:id/discard", async ({ params, principal, set }) => {
      let dropped: boolean;
      try {
        dropped = await deps.queue.discardFailed(params.id);
      } catch {
        throw serviceUnavailable("The job queue is unreachable; retry later");
      }
      if (!dropped) throw gone(params.id);
      audit(deps, "discard", principal.userId, params.id);
      set.status = 204;
    }, {
      auth: "admin",
      params: JobParams,
      response: { 204: t.Void(), ...problems(401, 403, 404, 503) },
      detail: { operationId: "discardFailedJob", summary: "Drop a failed job (admin; audited)" },
    });
}

/** The operations view of the dashboard and the failed-job actions (admin). */
export function operationsFeature(slice: OperationsSlice): Feature {
  return { name: "operations", routes: operationsModule(slice) };
}
