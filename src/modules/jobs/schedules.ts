// The cron schedules of the jobs feature (the scaler's is the platform's). Append yours: a name, a croner
// pattern (UTC; six fields puts seconds first), whether it writes the database (then only an instance that can
// write runs it), and the run. Each tick runs once in the cluster (see src/platform/cron/scheduler.ts); a run should honour ctx.signal.
import { pruneInstances, type RegistryDeps } from "../../platform/cluster/registry.ts";
import type { ScheduleDefinition } from "../../platform/cron/scheduler.ts";
import { cleanupExpiredSessions } from "./handlers.ts";

/** What the runs need: the session cleanup its database and logger, the pruning the registry's way to the primary. */
export type SchedulesDeps = RegistryDeps;

export const SCHEDULES: ScheduleDefinition<SchedulesDeps>[] = [
  {
    name: "cleanup_expired_sessions",
    pattern: "*/15 * * * *",
    writesDb: true,
    description: "Deletes login sessions past their expiry",
    async run(deps, ctx) {
      // In batches, stopping between them once ctx.signal is aborted (lease lost, or shutdown past its grace).
      await cleanupExpiredSessions(deps, { signal: ctx.signal });
    },
  },
  {
    name: "prune_instances",
    pattern: "0 * * * *",
    writesDb: true,
    description: "Deletes heartbeat rows of instances not seen for an hour",
    async run(deps, ctx) {
      // One DELETE (or one call to the primary): nothing to stop halfway, so only refuse to start once aborted.
      ctx.signal.throwIfAborted();
      await pruneInstances(deps);
    },
  },
];
