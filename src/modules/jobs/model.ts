import { t } from "elysia";
import { Int, withMessage } from "../../platform/http/models.ts";

export const JobId = withMessage(
  t.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_.:-]+$", description: "A job's id", examples: ["1733112000000-0"] }),
  "must be a job id: 1 to 128 letters, digits or _ . : -",
);

export const Job = t.Object({
  id: t.String(),
  type: t.String(),
  status: t.Union([t.Literal("pending"), t.Literal("running"), t.Literal("completed"), t.Literal("failed"), t.Literal("retrying")]),
  created_at: t.String({ format: "date-time" }),
  started_at: t.Union([t.String({ format: "date-time" }), t.Null()]),
  completed_at: t.Union([t.String({ format: "date-time" }), t.Null()], { description: "When the job reached its final state" }),
  error_message: t.Union([t.String(), t.Null()], { description: "The last error (also while retrying)" }),
  retry_count: Int({ minimum: 0 }),
  max_retries: Int({ minimum: 0 }),
}, { description: "A background job" });
export type Job = typeof Job.static;

export const NotFoundJob = t.Object({ status: t.Literal("not_found") });

export const JobParams = t.Object({ id: JobId });

export const JobStatusBody = t.Object(
  { job_ids: t.Array(JobId, { maxItems: 1000, description: "At most 1000 ids" }) },
  { additionalProperties: false, examples: [{ job_ids: ["1733112000000-0", "1733112000001-0"] }] },
);

export const JobStatusMap = t.Record(t.String(), t.Union([Job, NotFoundJob]), {
  description: "Each id asked for, with its job or {status: \"not_found\"}",
});
