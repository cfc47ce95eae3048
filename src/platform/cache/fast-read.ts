// The cached user detail answered in front of the framework: `GET /api/v1/users/<id>` with a bearer token and
// an L1 hit is the service's hottest request, and Elysia's per-request work (routing, TypeBox decoding of the
// id, hooks) costs more than the rest of it. Bun's router (`routes` in src/server.ts) sends that route's GETs
// (and HEADs) here with the decoded :id; a query string does not change the route's answer, so it reaches here
// too. This path does exactly what the Elysia route does for that case (same auth function, same id rule,
// same cache entry and bytes, same headers, same log line and metrics) and declines (returns undefined) for
// everything else: HEAD, a body, an id that is not canonical, a missing or invalid token, a session that is
// revoked or not in memory, an L1 miss.
// Declined requests take the normal route unchanged.
//
// Keep it in step with usersModule's `GET /:id`: a hook added there (rate limit, session check in the macro)
// must be added here too, or this path must decline. Token and session checks live in Auth, shared by both.
import type { Logger } from "../observability/logger.ts";
import type { Auth } from "../http/auth.ts";
import type { RateLimiter, RatePolicy } from "../http/rate-limit.ts";
import { rateLimitHeader } from "../http/rate-limits.ts";
import { putOnto, type HeaderPolicy } from "../http/headers.ts";
import { requestIdOf, requestLogger } from "../http/request-context.ts";
import type { Cache } from "./port.ts";

export const FAST_ROUTE = "/api/v1/users/:id";
/** The canonical text of an id, as the app's route accepts it: 1 to 16 digits, no leading zero. */
function isCanonicalId(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 16) return false;
  let c = s.charCodeAt(0);
  if (c < 49 || c > 57) return false;
  for (let i = 1; i < n; i++) {
    c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

// One Headers per x-cache value, reused: a Response copies its init headers when it is made, so the template's
// x-request-id is set just before each one (26.9k against 27.2k instructions per request for building the
// Response and then setting the header on its copy, under callgrind).
// The policy's headers for a request without Origin are the same for every request (requests with one decline).
function templateMaker(policy: HeaderPolicy | undefined) {
  const templates = new Map<string, Headers>();
  const blank = new Request("http://localhost/");
  return (source: string): Headers => {
    let h = templates.get(source);
    if (!h) {
      h = new Headers({ "content-type": "application/json", "x-cache": source, "x-request-id": "" });
      policy?.decorate(blank, putOnto(h));
      templates.set(source, h);
    }
    return h;
  };
}

export interface FastReadOptions {
  cache: Cache;
  /** The cache key of a user's detail, as the users feature writes it. */
  key: (id: number) => string;
  logger: Logger;
  /** The app's own token and session checks; a session not in memory sends the request the app's way. */
  auth: Auth;
  /** The app's response headers (headers.ts); a request whose answer depends on its Origin declines. */
  headers?: HeaderPolicy;
  /** The app's read limit (rate-limits.ts), decided here the same way for the requests answered here. */
  rateLimit?: { limiter: RateLimiter; policy: RatePolicy };
  /** Records the duration of an answered request (the metrics series of GET FAST_ROUTE 200). */
  observe?: (seconds: number) => void;
}

/**
 * Returns a function answering the request synchronously, or undefined to let the app handle it. The server
 * routes `GET FAST_ROUTE` to it (Bun's own router: no URL string to build and parse); `id` is the route's
 * decoded `:id` and `start` is performance.now() when the request arrived.
 */
export type FastRead = (request: Request, id: string, start: number) => Response | undefined;

export function userDetailFastPath(opts: FastReadOptions): FastRead | null {
  const { cache, key, logger, auth, observe, rateLimit, headers: policy } = opts;
  const headersFor = templateMaker(policy);
  const peek = cache.peek?.bind(cache);
  if (!peek) return null;
  const logHit = requestLogger(logger, "GET", FAST_ROUTE, 200);
  const answer: FastRead = (request, rawId, start) => {
    // HEAD reaches a GET route too.
    if (request.method !== "GET") return undefined;
    if (!isCanonicalId(rawId)) return undefined;
    const id = Number(rawId);
    if (!Number.isSafeInteger(id)) return undefined;
    const headers = request.headers;
    // The app answers 413 to a Content-Length over its limit before routing; a GET's body is otherwise ignored
    // (a chunked one too), so only a declared length sends the request the app's way.
    if (headers.get("content-length") !== null) return undefined;
    if (policy?.variesByOrigin(request)) return undefined;
    // A revoked session (null) or one not in memory (undefined): the app answers (401, or after loading it).
    const principal = auth.peekPrincipal(headers.get("authorization"));
    if (!principal) return undefined;
    // undefined also for a cached "no such user": the app writes that 404 as problem+json.
    const hit = peek(key(id));
    if (hit === undefined) return undefined;
    let limit: string | undefined;
    if (rateLimit !== undefined) {
      // Refused: the app refuses it again (a refusal consumes nothing) and writes the 429.
      const d = rateLimit.limiter.local("read:s:" + principal.sessionId, rateLimit.policy);
      if (!d.allowed) return undefined;
      limit = rateLimitHeader(d);
    }
    const rid = requestIdOf(request);
    const out = headersFor(hit.source);
    out.set("x-request-id", rid);
    if (limit !== undefined) out.set("ratelimit", limit);
    else out.delete("ratelimit");
    const response = new Response(hit.json, { headers: out });
    const ms = performance.now() - start;
    logHit(ms, rid);
    observe?.(ms / 1000);
    return response;
  };
  // Whatever goes wrong here, the app handles the request its usual way (and answers errors as problems).
  return (request, rawId, start) => {
    try {
      return answer(request, rawId, start);
    } catch {
      return undefined;
    }
  };
}
