// A feature as the composition root sees it: its routes, job types, cron schedules, cached reads and start-up
// chores, all built from the narrow slice of dependencies the feature asked for. The root (src/main) builds the
// slices and loops over one list of features; a feature never sees the rest of the instance.
import type { AnyElysia } from "elysia";
import type { ScheduleDefinition } from "./cron/scheduler.ts";
import { cachedReadOf, type CachedRead } from "./http/cached-read.ts";
import type { JobDefinition } from "./jobs/port.ts";

/** Work an instance does once while it starts. */
export interface StartupChore {
  name: string;
  /**
   * "built": as soon as the instance's dependencies exist (also for an app a test drives without serving it);
   * "serve": just before the instance listens.
   */
  when: "built" | "serve";
  /** Started and not waited for (the instance serves without it). */
  detached?: boolean;
  run(): Promise<unknown>;
}

/** A cron schedule whose run has its dependencies already: the scheduler hands it nothing. */
export type FeatureSchedule = ScheduleDefinition<void>;

export interface Feature {
  name: string;
  /** One Elysia instance with the feature's routes (and its prefix). */
  routes?: AnyElysia;
  /** Where the routes go: under /api/v1 (the default) or at the root of the site (health, dashboard, …). */
  mount?: "api" | "site";
  jobs?: readonly JobDefinition<any>[];
  schedules?: readonly FeatureSchedule[];
  /** The cached reads its routes mount (`mountedCachedReads(routes)`); each is also answered in front of Elysia. */
  cachedReads?: readonly CachedRead[];
  startup?: readonly StartupChore[];
}

/** A schedule written against some dependencies, given them: what a feature lists in `schedules`. */
export function boundSchedule<D>(def: ScheduleDefinition<D>, deps: D): FeatureSchedule {
  return { name: def.name, pattern: def.pattern, writesDb: def.writesDb, description: def.description, run: (_, ctx) => def.run(deps, ctx) };
}

/** The cached reads an instance of routes mounted with mountCachedRead, in route order. */
export function mountedCachedReads(routes: AnyElysia): CachedRead[] {
  return routes.routes.flatMap((r) => {
    const declared = r.method === "GET" ? cachedReadOf(r.handler) : undefined;
    return declared ? [declared.read] : [];
  });
}
