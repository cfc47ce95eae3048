import { t } from "elysia";
import { DecimalInt, Int, QuerySchema } from "../../platform/http/models.ts";
import { PreferencesPatch } from "../preferences/model.ts";
import { Job } from "../jobs/model.ts";

export const BULK_MAX_USERS = 1000;

export const BulkPreferencesBody = t.Object(
  {
    user_ids: t.Array(Int({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), {
      minItems: 1,
      maxItems: BULK_MAX_USERS,
      description: `1 to ${BULK_MAX_USERS} user ids (repeats count once)`,
    }),
    preference_updates: PreferencesPatch,
  },
  { additionalProperties: false, examples: [{ user_ids: [42, 43], preference_updates: { theme: "dark", legacy_flag: null } }] },
);

export const BulkPreferencesAccepted = t.Object({
  jobs: t.Record(t.String(), t.String(), { description: "user id -> job id of its update_user_preferences job" }),
});

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

export const CronEntry = t.Object({
  name: t.String(),
  schedule: t.String({ description: "croner pattern, UTC" }),
  last_run_at: Nullable(t.String({ format: "date-time" })),
  last_instance: Nullable(t.String()),
  last_status: Nullable(t.Union([t.Literal("running"), t.Literal("completed"), t.Literal("failed"), t.Literal("aborted")])),
  next_run_at: Nullable(t.String({ format: "date-time" })),
  last_finished_at: Nullable(t.String({ format: "date-time" })),
  last_error: Nullable(t.String()),
  description: Nullable(t.String()),
  writes_db: t.Boolean(),
});

export const FailedQuery = QuerySchema({
  limit: t.Optional(DecimalInt({ minimum: 1, maximum: 500, default: 50, description: "How many, newest first", examples: [50] })),
});

export const FailedJobs = t.Array(Job);
