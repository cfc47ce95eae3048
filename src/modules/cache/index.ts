// GET /cache/stats (admin): this instance's cache counters, exactly in the contract's shape.
import { Elysia } from "elysia";
import type { AppDeps } from "../../main/deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import { CacheStatsBody } from "./model.ts";

export function cacheModule(deps: AppDeps) {
  return new Elysia({ prefix: "/cache", tags: ["cache"] })
    .use(authPlugin(deps.auth))
    .model({ CacheStats: CacheStatsBody })
    .get("/stats", () => deps.cache.stats(), {
      auth: "admin",
      response: { 200: CacheStatsBody, ...problems(401, 403) },
      detail: { operationId: "getCacheStats", summary: "Cache counters of the instance that answers (admin)" },
    });
}
