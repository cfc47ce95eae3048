// Liveness and readiness. Ready means the database answers; Redis and replication are reported, not required.
import { Elysia, t } from "elysia";
import type { Role } from "../../platform/cluster/role.ts";
import type { Database } from "../../platform/db/client.ts";
import type { Feature } from "../../platform/feature.ts";
import type { Redis } from "../../platform/redis.ts";
import type { Breakers } from "../../platform/resilience/breakers.ts";
import { withTimeout } from "../../platform/redis.ts";

const CHECK_TIMEOUT_MS = 1_000;

const Check = t.Object({ status: t.String(), latency_ms: t.Optional(t.Number()), detail: t.Optional(t.String()) });
export const HealthBody = t.Object({
  status: t.Union([t.Literal("ok"), t.Literal("degraded"), t.Literal("down")]),
  instance_id: t.String(),
  region: t.String(),
  checks: t.Object({
    database: Check,
    redis: Check,
    replication: t.Object({ status: t.String(), role: t.String(), primary: t.Union([t.String(), t.Null()]) }),
  }),
  /** Circuit breakers of the outbound dependencies: one open makes the instance degraded, never down. */
  breakers: t.Object({
    status: t.String(),
    open: t.Array(t.String()),
    dependencies: t.Array(t.Object({ dependency: t.String(), state: t.String(), since: t.Union([t.String(), t.Null()]) })),
  }),
});
type HealthBody = typeof HealthBody.static;

async function timed(fn: () => Promise<unknown>): Promise<{ status: string; latency_ms: number; detail?: string }> {
  const start = performance.now();
  try {
    await withTimeout(fn(), CHECK_TIMEOUT_MS, "check");
    return { status: "ok", latency_ms: Math.round((performance.now() - start) * 100) / 100 };
  } catch (err) {
    return { status: "down", latency_ms: Math.round((performance.now() - start) * 100) / 100, detail: (err as Error).message };
  }
}

export interface HealthSlice {
  database: Database;
  /** Null in the no-Redis mode. */
  redis: Redis | null;
  role: Pick<Role, "state">;
  breakers: Pick<Breakers, "list">;
  config: { INSTANCE_ID: string; FLY_REGION: string };
}

export async function healthReport(deps: HealthSlice): Promise<HealthBody> {
  const redis = deps.redis;
  const [database, redisCheck] = await Promise.all([
    timed(() => deps.database.client.execute("SELECT 1")),
    redis ? timed(() => redis.ping()) : Promise.resolve({ status: "disabled" }),
  ]);
  const role = deps.role.state();
  const primary = role.kind === "replica" ? role.primary : null;
  const breakerList = deps.breakers.list();
  const open = breakerList.filter((b) => b.state !== "closed").map((b) => b.dependency);
  const status = database.status !== "ok" ? "down" : redisCheck.status === "down" || open.length > 0 ? "degraded" : "ok";
  return {
    status,
    instance_id: deps.config.INSTANCE_ID,
    region: deps.config.FLY_REGION,
    checks: {
      database,
      redis: redisCheck,
      replication: { status: role.kind === "undecided" ? "no_primary" : "ok", role: role.kind === "primary" ? "primary" : "replica", primary },
    },
    breakers: {
      status: open.length > 0 ? "degraded" : "ok",
      open,
      dependencies: breakerList.map((b) => ({ dependency: b.dependency, state: b.state, since: b.since })),
    },
  };
}

export function healthModule(deps: HealthSlice) {
  return new Elysia({ prefix: "/health", tags: ["health"] })
    .get("/live", () => ({ status: "ok" as const }), {
      response: { 200: t.Object({ status: t.Literal("ok") }) },
      detail: { operationId: "getLiveness", summary: "200 while the process runs" },
    })
    .get("/ready", async ({ set }) => {
      const report = await healthReport(deps);
      if (report.checks.database.status !== "ok") set.status = 503;
      return report;
    }, {
      response: { 200: HealthBody, 503: HealthBody },
      detail: {
        operationId: "getReadiness",
        summary: "200 when the database answers, else 503",
        responses: { 503: { description: "The database does not answer; the body names each check" } },
      },
    })
    .get("", () => healthReport(deps), {
      response: { 200: HealthBody },
      detail: { operationId: "getHealth", summary: "The readiness report, always 200" },
    });
}

export function healthFeature(slice: HealthSlice): Feature {
  return { name: "health", mount: "site", routes: healthModule(slice) };
}
