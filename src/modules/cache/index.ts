// GET /cache/stats (admin): this instance's cache counters, exactly in the contract's shape.
import { Elysia } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import type { Cache } from "../../platform/cache/port.ts";
import type { Auth } from "../../platform/http/auth.ts";
import type { Feature } from "../../platform/feature.ts";
import { CacheStatsBody } from "./model.ts";

export interface CacheSlice {
  cache: Pick<Cache, "stats">;
  /** The auth macro of the route. */
  auth: Auth;
}

export function cacheModule(deps: CacheSlice) {
  return new Elysia({ prefix: "/cache", tags: ["cache"] })
    .use(authPlugin(deps.auth))
    .model({ CacheStats: CacheStatsBody })
    .get("/stats", () => deps.cache.stats(), {
      auth: "admin",
      response: { 200: CacheStatsBody, ...problems(401, 403) },
      detail: { operationId: "getCacheStats", summary: "Cache counters of the instance that answers (admin)" },
    });
}

export function cacheFeature(slice: CacheSlice): Feature {
  return { name: "cache", mount: "site", routes: cacheModule(slice) };
}
