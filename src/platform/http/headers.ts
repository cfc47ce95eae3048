// Headers every response carries, and CORS. nosniff everywhere; `cache-control: no-store` unless the route
// chose its own (API answers carry tokens and personal data); HSTS when configured (on Fly by default: its
// edge serves HTTPS); CORS for the listed origins only, preflights answered before anything else
// (rate limits, the replica write guard) looks at the request, each with its path's own methods.
export interface HeaderSettings {
  /** CORS_ORIGINS as config.ts parsed it: `*`, or origins without a trailing slash. Empty: CORS off. */
  corsOrigins: readonly string[];
  /** Strict-Transport-Security max-age in seconds; 0 sends none. */
  hstsMaxAge: number;
}

/**
 * The content type of every JSON success answer, whichever way it is answered: the app's (request-context.ts sets
 * it for the objects handlers return), the cached reads' and the fast paths'. Bun's Response.json writes the same,
 * so an answer no hook reaches cannot differ either.
 */
export const JSON_CONTENT_TYPE = "application/json;charset=utf-8";

/** Sets a header unless `keep` and it is already there. */
export type PutHeader = (name: string, value: string, keep?: boolean) => void;

const ALLOW_HEADERS = "authorization, content-type, idempotency-key, x-request-id";
// `allow`: a 405 names the path's methods there, which browser code can then read.
const EXPOSE_HEADERS = "x-request-id, x-cache, retry-after, ratelimit, ratelimit-policy, idempotent-replayed, www-authenticate, allow";
const PREFLIGHT_MAX_AGE = "600";
/** A year, as HSTS preload lists expect. */
export const FLY_HSTS_MAX_AGE = 31_536_000;

export interface HeaderPolicy {
  /** Adds the headers to an answer of `request`. */
  decorate(request: Request, put: PutHeader): void;
  /**
   * The answer to a CORS preflight, or undefined when `request` is not one (or CORS is off). `allow` is the
   * `Allow` value of the request's path (allowed-methods.ts), the methods granted; undefined for a path no route
   * answers, whose preflight is no preflight either: it goes on as a plain OPTIONS there, to the same 404.
   */
  preflight(request: Request, allow: (request: Request) => string | undefined, extra?: Record<string, string>): Response | undefined;
  /** Whether responses to `request` depend on its Origin (the cached-read fast path declines those). */
  variesByOrigin(request: Request): boolean;
}

export function headerPolicy(settings: HeaderSettings): HeaderPolicy {
  const list = settings.corsOrigins;
  const cors = { any: list.includes("*"), origins: new Set(list.filter((o) => o !== "*").map((o) => o.toLowerCase())) };
  const corsOn = cors.any || cors.origins.size > 0;
  const hstsAge = settings.hstsMaxAge;
  const hsts = hstsAge > 0 ? `max-age=${hstsAge}; includeSubDomains` : undefined;
  const allowed = (origin: string | null): string | undefined => {
    if (!corsOn || origin === null) return undefined;
    if (cors.any) return "*";
    return cors.origins.has(origin.toLowerCase()) ? origin : undefined;
  };
  return {
    decorate(request, put) {
      put("x-content-type-options", "nosniff");
      put("cache-control", "no-store", true);
      if (hsts !== undefined) put("strict-transport-security", hsts);
      if (!corsOn) return;
      put("vary", "Origin", true);
      const origin = allowed(request.headers.get("origin"));
      if (origin !== undefined) {
        put("access-control-allow-origin", origin);
        put("access-control-expose-headers", EXPOSE_HEADERS);
      }
    },
    preflight(request, allow, extra = {}) {
      if (!corsOn || request.method !== "OPTIONS") return undefined;
      const origin = request.headers.get("origin");
      if (origin === null || request.headers.get("access-control-request-method") === null) return undefined;
      const methods = allow(request);
      if (methods === undefined) return undefined;
      const headers: Record<string, string> = { ...extra, vary: "Origin", "cache-control": "no-store", "x-content-type-options": "nosniff" };
      if (hsts !== undefined) headers["strict-transport-security"] = hsts;
      const ok = allowed(origin);
      // A disallowed origin gets the same 204 without the allow headers: the browser refuses the call.
      if (ok !== undefined) {
        headers["access-control-allow-origin"] = ok;
        headers["access-control-allow-methods"] = methods;
        headers["access-control-allow-headers"] = ALLOW_HEADERS;
        headers["access-control-max-age"] = PREFLIGHT_MAX_AGE;
      }
      return new Response(null, { status: 204, headers });
    },
    variesByOrigin(request) {
      return corsOn && request.headers.get("origin") !== null;
    },
  };
}

/** PutHeader onto a Headers object. */
export const putOnto =
  (h: Headers): PutHeader =>
  (name, value, keep) => {
    if (!(keep && h.has(name))) h.set(name, value);
  };

/** PutHeader onto a plain record (Elysia's set.headers, a problem's headers). */
export const putInto =
  (r: Record<string, string | number | undefined>): PutHeader =>
  (name, value, keep) => {
    if (!(keep && r[name] !== undefined)) r[name] = value;
  };

/**
 * The headers of one kind of success answered in front of the app (fast-read.ts, fast-write.ts), made once and
 * reused: a Response copies its init headers when it is made, so only x-request-id and the RateLimit value are
 * set per request. The policy's headers for a request without Origin are the same for every request (the fast
 * routes decline requests with one).
 */
export function answerHeaders(policy: HeaderPolicy | undefined, fixed: Record<string, string>): (id: string, limit: string | undefined) => Headers {
  const h = new Headers({ ...fixed, "x-request-id": "" });
  policy?.decorate(new Request("http://localhost/"), putOnto(h));
  return (id, limit) => {
    h.set("x-request-id", id);
    if (limit !== undefined) h.set("ratelimit", limit);
    else h.delete("ratelimit");
    return h;
  };
}
