// The OpenAPI document's deployment-wide parts (src/platform/http/openapi.ts builds the rest from the routes):
// who may call, where, and what the platform in front of every route may also answer. Each rule is the one the
// code applies (replica guard, rate limits, Idempotency-Key), imported rather than restated.
import { CACHE_SOURCES } from "../platform/cache/port.ts";
import { replicaGuardApplies } from "../platform/cluster/replica-guard.ts";
import { IDEMPOTENCY_KEY_PATTERN, idempotencyApplies } from "../platform/http/idempotency.ts";
import type { OpenApiOptions, ResponseSpec } from "../platform/http/openapi.ts";
import { rateLimitApplies } from "../platform/http/rate-limits.ts";

const TAGS = [
  { name: "auth", description: "Login and logout" },
  { name: "users", description: "Accounts" },
  { name: "posts", description: "Posts of a user" },
  { name: "preferences", description: "Preferences of a user" },
  { name: "jobs", description: "Background jobs (admin)" },
  { name: "admin", description: "Bulk operations, cron, failed jobs and operations data (admin)" },
  { name: "health", description: "Liveness and readiness" },
  { name: "cluster", description: "Instances and their load (admin)" },
  { name: "cache", description: "Cache counters (admin)" },
];

const HEADERS: OpenApiOptions["headers"] = {
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
  "idempotent-replayed": {
    description: "Present on the stored response replayed to a retry with the same Idempotency-Key and body",
    schema: { type: "string", enum: ["true"] },
  },
};

function merge(into: Record<number, ResponseSpec>, status: number, spec: ResponseSpec): void {
  const had = into[status];
  into[status] = had
    ? { description: `${had.description}; or: ${spec.description}`, headers: [...new Set([...(had.headers ?? []), ...(spec.headers ?? [])])] }
    : spec;
}

/**
 * Routes that run again on every request whatever its Idempotency-Key: a replayed login would hand out a token
 * (perhaps revoked since) without checking the password, and the token would sit in the database for 24 h;
 * a logout has nothing to replay. createApp hands the same set to the plugin.
 */
export const NOT_REPLAYED: ReadonlySet<string> = new Set(["/api/v1/auth/login", "/api/v1/auth/logout"]);

export function openApiOptions(version: string): OpenApiOptions {
  return {
    info: {
      title: "neodyme-edge",
      version,
      description:
        "User service: accounts, posts, preferences, login. Errors are application/problem+json (RFC 9457); " +
        "every response carries x-request-id. Ids and numbers in paths and query strings are decimal digits only.",
    },
    servers: [{ url: "/", description: "The instance serving this document" }],
    tags: TAGS,
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "The access_token from POST /api/v1/auth/login" },
    },
    headers: HEADERS,
    extra: ({ method, path }) => {
      const out: Record<number, ResponseSpec> = {};
      if (replicaGuardApplies(method, path)) {
        merge(out, 409, {
          description: "Sent to a read-only replica: replay the request on the primary named in fly-replay (Fly's edge does it)",
          headers: ["fly-replay"],
        });
      }
      if (idempotencyApplies(method) && !NOT_REPLAYED.has(path)) {
        merge(out, 409, { description: "A request with this Idempotency-Key is still being handled: retry after Retry-After", headers: ["retry-after"] });
        merge(out, 422, { description: "The request did not validate, or its Idempotency-Key was used with another request" });
      }
      if (rateLimitApplies(method, path)) {
        merge(out, 429, {
          description: "Too many requests from this caller in this class (reads, writes, login, registration); retry after Retry-After seconds",
          headers: ["retry-after", "ratelimit-policy", "ratelimit"],
        });
      }
      if (path.startsWith("/api/v1/")) {
        merge(out, 503, { description: "A dependency (database, Redis, the primary) is unavailable; retry later", headers: ["retry-after"] });
      }
      return out;
    },
    responseHeaders: ({ method, path }) => ({
      // Sent while the route's class has a limit (each can be turned off).
      ...(rateLimitApplies(method, path) ? { ratelimit: ["2xx" as const] } : {}),
      ...(idempotencyApplies(method) && !NOT_REPLAYED.has(path) ? { "idempotent-replayed": ["2xx" as const, "4xx" as const] } : {}),
    }),
    parameters: ({ method, path }) =>
      idempotencyApplies(method) && !NOT_REPLAYED.has(path)
        ? [
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              description:
                "Makes a retry safe: the first response is kept 24 h and replayed to a retry with the same key and body, from any instance",
              schema: { type: "string", minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN },
              example: "5f1c2a9e-registration-1",
            },
          ]
        : [],
  };
}
