// The preferences feature's job type: update_user_preferences, queued by the admin's bulk update. Idempotent:
// the merge sets the same keys again, and none that the user wrote after the job was accepted.
import { AppError } from "../../platform/http/errors.ts";
import { PermanentJobError, type JobDefinition } from "../../platform/jobs/port.ts";
import { JOB_TYPES, payloadUserId as userId, type PreferencesPayload } from "../jobs/types.ts";
import * as preferences from "./service.ts";
import type { PreferencesDeps } from "./service.ts";

export function preferencesJobs(deps: Pick<PreferencesDeps, "database" | "cache">): JobDefinition<any>[] {
  const prefs: JobDefinition<PreferencesPayload> = {
    type: JOB_TYPES.updatePreferences,
    writesDb: true,
    async handler(p) {
      const id = userId(p);
      if (typeof p.preference_updates !== "object" || p.preference_updates === null) {
        throw new PermanentJobError("payload has no preference_updates");
      }
      try {
        // Merges in one transaction and invalidates the user's cache entries.
        const acceptedAt = typeof p.accepted_at === "number" && Number.isFinite(p.accepted_at) ? p.accepted_at : undefined;
        await preferences.merge(deps, id, p.preference_updates, { acceptedAt });
      } catch (err) {
        // A user deleted since, or a merge over the key limit: retrying cannot help.
        if (err instanceof AppError && err.status < 500) throw new PermanentJobError(err.message, { cause: err });
        throw err;
      }
    },
  };
  return [prefs];
}
