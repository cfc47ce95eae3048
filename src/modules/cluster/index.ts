// GET /cluster/stats (admin), the /internal routes a replica uses to have the primary write its heartbeat (and
// the one the users command uses without Redis to have the instance beside it drop what it changed), and the
// replica write guard. Mounted outside /api/v1.
import { Elysia, t } from "elysia";
import { removeInstance, removeInstancesNotSeenSince, upsertInstance } from "../../platform/cluster/instances.ts";
import { q } from "../../platform/db/tx.ts";
import { internalTokenMatches } from "../../platform/cluster/internal.ts";
import { beatFromWire } from "../../platform/cluster/registry.ts";
import { noPrimary, replicaGuard } from "../../platform/cluster/replica-guard.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { conflict, unauthorized } from "../../platform/http/errors.ts";
import { Int, problems } from "../../platform/http/models.ts";
import { BeatBody, CacheInvalidateBody, ClusterStats, InstanceIdParams, PruneBody } from "./model.ts";
import type { Cache } from "../../platform/cache/port.ts";
import type { Role } from "../../platform/cluster/role.ts";
import type { Auth } from "../../platform/http/auth.ts";
import type { Feature } from "../../platform/feature.ts";
import { clusterStats, type ClusterStatsDeps } from "./service.ts";

export interface ClusterSlice extends ClusterStatsDeps {
  /** The replica write guard and the internal routes ask it who the primary is. */
  role: Role;
  /** The auth macro of the routes. */
  auth: Auth;
  /** What POST /internal/cache/invalidate drops entries from. */
  cache: Pick<Cache, "delete" | "invalidateTags">;
  config: ClusterStatsDeps["config"] & {
    /** The replicas' token for the internal routes; without it they do not exist. */
    INTERNAL_TOKEN?: string;
  };
}

/**
 * Replica-to-primary routes, and the users command's cache invalidation (only of use without Redis, where the
 * cache bus cannot reach this process). Registered only when INTERNAL_TOKEN is set; only the primary serves
 * them, as it alone writes the database they are about.
 */
function internalRoutes(deps: ClusterSlice, token: string) {
  const hidden = { hide: true } as const;
  return new Elysia({ prefix: "/internal", tags: ["internal"] })
    .onTransform(({ request }) => {
      if (!internalTokenMatches(request.headers.get("authorization"), token)) {
        throw unauthorized("Missing or invalid internal token");
      }
      const role = deps.role.state();
      if (role.kind === "undecided") throw noPrimary();
      if (role.kind === "replica") {
        // Sent here while a failover moved the primary: the caller re-reads .primary and retries.
        throw conflict(`This instance is not the primary; the primary is ${role.primary}`, { "fly-replay": `instance=${role.primary}` });
      }
    })
    .put("/instances/:id", async ({ params, body, set }) => {
      const beat = beatFromWire(params.id, body);
      await deps.database.write((tx) => q(upsertInstance(tx, beat)));
      set.status = 204;
    }, {
      params: InstanceIdParams,
      body: BeatBody,
      response: { 204: t.Void(), ...problems(401, 409, 422) },
      detail: hidden,
    })
    .delete("/instances/:id", async ({ params, set }) => {
      await deps.database.write((tx) => q(removeInstance(tx, params.id)));
      set.status = 204;
    }, {
      params: InstanceIdParams,
      response: { 204: t.Void(), ...problems(401, 409) },
      detail: hidden,
    })
    .post("/instances/prune", async ({ body }) => ({
      removed: await deps.database.write((tx) => q(removeInstancesNotSeenSince(tx, body.max_age_seconds * 1000))),
    }), {
      body: PruneBody,
      response: { 200: t.Object({ removed: Int() }), ...problems(401, 409, 422) },
      detail: hidden,
    })
    // As if the message had come over the cache bus: drops the entries here (and, with Redis, says so to the rest).
    .post("/cache/invalidate", async ({ body, set }) => {
      if (body.keys.length > 0) await deps.cache.delete(body.keys);
      if (body.tags.length > 0) await deps.cache.invalidateTags(body.tags);
      set.status = 204;
    }, {
      body: CacheInvalidateBody,
      response: { 204: t.Void(), ...problems(401, 409, 422) },
      detail: hidden,
    });
}

export function clusterModule(deps: ClusterSlice) {
  const app = new Elysia({ name: "cluster" })
    .use(replicaGuard(deps.role))
    .use(authPlugin(deps.auth))
    .model({ ClusterStats })
    .get("/cluster/stats", () => clusterStats(deps), {
      auth: "admin",
      response: { 200: ClusterStats, ...problems(401, 403) },
      detail: {
        operationId: "getClusterStats",
        tags: ["cluster"],
        summary: "Instances from the heartbeat table, their health and load (admin)",
        description:
          "An instance is unhealthy after three missed heartbeats. The least loaded instance is the healthy one with the lowest 0.7 x in-flight + 0.3 x CPU %.",
      },
    });
  const token = deps.config.INTERNAL_TOKEN;
  return token ? app.use(internalRoutes(deps, token)) : app;
}

/** The replica write guard, /cluster/stats, and the /internal routes (with INTERNAL_TOKEN). */
export function clusterFeature(slice: ClusterSlice): Feature {
  return { name: "cluster", mount: "site", routes: clusterModule(slice) };
}
