// The composition root of the HTTP surface: createApp(deps) wires the platform and the feature modules.
// It never listens and opens nothing; src/index.ts (or a test) builds the deps.
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { requestContext } from "./platform/http/request-context.ts";
import { headerPolicy } from "./platform/http/headers.ts";
import { rateLimitApplies, rateLimitPlugin } from "./platform/http/rate-limits.ts";
import { idempotencyPlugin } from "./platform/http/idempotency.ts";
import { bodyValueCaps, boundValidationErrors } from "./platform/http/validation-cost.ts";
import { JSON_MAX_VALUES } from "./platform/http/json-depth.ts";
import { openApiDocument, type OpenApiOptions } from "./platform/http/openapi.ts";
import { replicaGuardApplies } from "./platform/cluster/replica-guard.ts";
import { CACHE_SOURCES } from "./platform/cache/port.ts";
import { adminModule } from "./modules/admin/index.ts";
import { authModule } from "./modules/auth/index.ts";
import { cacheModule } from "./modules/cache/index.ts";
import { clusterModule } from "./modules/cluster/index.ts";
import { dashboardModule } from "./modules/dashboard/index.ts";
import { docsModule } from "./modules/docs/index.ts";
import { healthModule } from "./modules/health/index.ts";
import { jobsModule } from "./modules/jobs/index.ts";
import { operationsModule } from "./modules/operations/index.ts";
import { postsModule } from "./modules/posts/index.ts";
import { preferencesModule } from "./modules/preferences/index.ts";
import { usersModule } from "./modules/users/index.ts";
import pkg from "../package.json" with { type: "json" };

export const VERSION = pkg.version;

export function createApp(deps: AppDeps) {
  const api = new Elysia({ prefix: "/api/v1" })
    .use(authModule(deps))
    .use(usersModule(deps))
    .use(postsModule(deps))
    .use(preferencesModule(deps))
    .use(jobsModule(deps))
    .use(adminModule(deps))
    .use(operationsModule(deps));

  const valueCaps = new Map<string, number>();
  const app = new Elysia({ normalize: false })
    .use(
      requestContext({
        logger: deps.logger,
        bodyLimit: deps.config.BODY_LIMIT_BYTES,
        instanceId: deps.config.INSTANCE_ID,
        headers: headerPolicy(deps.config),
        valueCaps,
      }),
    )
    .use(rateLimitPlugin({ limiter: deps.rateLimiter, auth: deps.auth, settings: deps.config }))
    .use(idempotencyPlugin({ database: deps.database, role: deps.role, bodyLimit: deps.config.BODY_LIMIT_BYTES, logger: deps.logger }))
    .use(dashboardModule(deps))
    .use(healthModule(deps))
    .use(cacheModule(deps))
    .use(clusterModule(deps))
    .use(api);
  const full = app.use(docsModule({ title: "neodyme-edge", document: () => openApiDocument(app, OPENAPI) }));
  const models = (full as unknown as { definitions: { type: Record<string, unknown> } }).definitions.type;
  boundValidationErrors(full.routes, models);
  for (const [route, cap] of bodyValueCaps(full.routes, models, JSON_MAX_VALUES)) valueCaps.set(route, cap);
  return full;
}

const TAGS = [
  { name: "auth", description: "Login" },
  { name: "users", description: "Accounts" },
  { name: "posts", description: "Posts of a user" },
  { name: "preferences", description: "Preferences of a user" },
  { name: "jobs", description: "Background jobs (admin)" },
  { name: "admin", description: "Bulk operations, cron and failed jobs (admin)" },
  { name: "health", description: "Liveness and readiness" },
  { name: "cluster", description: "Instances and their load (admin)" },
  { name: "cache", description: "Cache counters (admin)" },
];

/** The document's deployment-wide parts: who may call, where, and what every route may also answer. */
const OPENAPI: OpenApiOptions = {
  info: {
    title: "neodyme-edge",
    version: VERSION,
    description:
      "User service: accounts, posts, preferences, login. Errors are application/problem+json (RFC 9457); " +
      "every response carries x-request-id. Ids and numbers in paths and query strings are decimal digits only.",
  },
  servers: [{ url: "/", description: "The instance serving this document" }],
  tags: TAGS,
  securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "The access_token from POST /api/v1/auth/login" } },
  headers: {
    "fly-replay": {
      description: "Where Fly's edge should replay the request: `instance=<primary>`",
      schema: { type: "string", examples: ["instance=148e272a"] },
    },
    ratelimit: {
      description: 'IETF RateLimit of the class the request counted against: `"<class>";r=<remaining>;t=<seconds until whole again>`',
      schema: { type: "string", examples: ['"read";r=599;t=1'] },
    },
    "ratelimit-policy": {
      description: 'IETF RateLimit-Policy of that class: `"<class>";q=<quota>;w=<window seconds>`',
      schema: { type: "string", examples: ['"read";q=600;w=60'] },
    },
    "x-cache": {
      description: "Which cache tier answered (miss: the database; stale: a stale entry while the database was unreachable)",
      schema: { type: "string", enum: [...CACHE_SOURCES] },
    },
  },
  extra: ({ method, path }) => {
    const out: Record<number, { description: string; headers?: string[] }> = {};
    if (replicaGuardApplies(method, path)) {
      out[409] = {
        description: "Sent to a read-only replica: replay the request on the primary named in fly-replay (Fly's edge does it)",
        headers: ["fly-replay"],
      };
    }
    if (rateLimitApplies(method, path)) {
      out[429] = {
        description: "Too many requests from this caller in this class (reads, writes, login, registration); retry after Retry-After seconds",
        headers: ["retry-after", "ratelimit-policy", "ratelimit"],
      };
    }
    if (path.startsWith("/api/v1/")) out[503] = { description: "A dependency (database, Redis, the primary) is unavailable; retry later", headers: ["retry-after"] };
    return out;
  },
  // Sent while the route's class has a limit (each can be turned off).
  responseHeaders: ({ method, path }): Record<string, "2xx"[]> => (rateLimitApplies(method, path) ? { ratelimit: ["2xx"] } : {}),
};

export type App = ReturnType<typeof createApp>;
