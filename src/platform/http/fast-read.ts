// The cached reads answered in front of the framework. For every route mountCachedRead() made (cached-read.ts),
// the server gets a Bun `routes` entry built from the same declaration: its params and query schemas decoded by
// a strict reader of canonical decimals, the same Auth, rate limit, cache entry, headers, log line and metrics.
// It answers an L1 hit synchronously and a miss through the cache's getOrSet with the declared loader (an
// uncached read through its loader, synchronously when the database answers so), and
// declines (undefined) whatever is unusual: HEAD, a body, a value that is not canonical, a query it cannot read
// the way the app would, an answer that depends on Origin, a token, session or access level refused, a rate-limit
// refusal, an entry holding null (the app answers the 404), an error. Declined requests take the app's way unchanged;
// a read decision already taken is handed to the app's rate limiter, which does not decide it again.
import type { Cache } from "../cache/port.ts";
import type { Auth, Principal } from "./auth.ts";
import type { RateLimiter, RatePolicy } from "./rate-limit.ts";
import { handOverDecision, quotaKey, rateLimitHeader } from "./rate-limits.ts";
import { answerHeaders, JSON_CONTENT_TYPE, type HeaderPolicy } from "./headers.ts";
import { requestIdOf, type RequestId } from "./request-context.ts";
import { cachedReadOf, readValue, type CachedRead, type ReadResult } from "./cached-read.ts";
import { refusal } from "./access.ts";
import { paramsReader, queryReader, type Decoded } from "./decimal-reader.ts";

/** What the server's route calls: a Response, a promise of one or of undefined (declined), or undefined. */
export type FastRead = (request: Request, params: Record<string, string>, start: number) => Response | Promise<Response | undefined> | undefined;

/** Writes the log line and the metrics of one answer of this route (status 200), prepared once per route. */
export type AnswerObserver = (route: string) => (durationMs: number, id: RequestId, request: Request) => void;

export interface FastReadOptions {
  /** The app's own token and session checks. */
  auth: Auth;
  /** The app's response headers (headers.ts); a request whose answer depends on its Origin declines. */
  headers?: HeaderPolicy;
  /** The app's read limit (rate-limits.ts), decided here the same way for the requests answered here. */
  rateLimit?: { limiter: RateLimiter; policy: RatePolicy };
  observe: AnswerObserver;
}

// One set of answer headers per x-cache value, and one without for an uncached read (headers.ts answerHeaders).
function templateMaker(policy: HeaderPolicy | undefined) {
  const templates = new Map<string | undefined, ReturnType<typeof answerHeaders>>();
  return (source: string | undefined) => {
    let h = templates.get(source);
    if (!h) {
      h = answerHeaders(policy, source === undefined ? { "content-type": JSON_CONTENT_TYPE } : { "content-type": JSON_CONTENT_TYPE, "x-cache": source });
      templates.set(source, h);
    }
    return h;
  };
}

/** The query string of a URL, "" when it has none. */
function queryOf(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? "" : url.slice(q + 1);
}

/** The fast answer of one declared read at `route` (the app's own route path), or null when its schemas are not decimal objects. */
export function fastRead(route: string, read: CachedRead, cache: Cache, opts: FastReadOptions): FastRead | null {
  const { auth, rateLimit, headers: policy } = opts;
  // No query schema: the app ignores the query string, and so does this path.
  const params = read.params === undefined ? () => ({}) : paramsReader(read.params);
  const query = read.query === undefined ? () => ({}) : queryReader(read.query);
  if (params === null || query === null) return null;
  const noQuery = read.query === undefined;
  const EMPTY: Decoded = {};
  const headersFor = templateMaker(policy);
  const peek = cache.peek?.bind(cache);
  const observed = opts.observe(route);

  const respond = (request: Request, json: string, source: string | undefined, limit: string | undefined, start: number): Response => {
    const rid = requestIdOf(request);
    const response = new Response(json, { headers: headersFor(source)(rid, limit) });
    observed(performance.now() - start, rid, request);
    return response;
  };

  /**
   * The app's read limit for this caller (its key by rate-limits.ts quotaKey): the RateLimit header's value,
   * undefined without a limit, or false when refused, the refusal handed to the app, which writes the 429 from it. `handOver`: an allowed decision goes with the request too, should it decline.
   */
  const readLimit = (request: Request, principal: Principal, handOver: boolean): string | undefined | false => {
    if (rateLimit === undefined) return undefined;
    const d = rateLimit.limiter.local(quotaKey("read", principal), rateLimit.policy);
    if (!d.allowed || handOver) handOverDecision(request, d);
    return d.allowed ? rateLimitHeader(d) : false;
  };

  /** The value for a caller already let in (a cached read's miss, any uncached read); undefined when null. */
  const load = (request: Request, params: unknown, query: unknown, principal: Principal, start: number) => {
    // From here on, a declined request's decision goes with it (the load may find nothing, or fail).
    const limit = readLimit(request, principal, true);
    if (limit === false) return undefined;
    const answered = (result: ReadResult) => (result.value === null ? undefined : respond(request, result.json, result.source, limit, start));
    const result = readValue(cache, read, { params, query, principal });
    return result instanceof Promise ? result.then(answered) : answered(result);
  };

  const miss = async (request: Request, raw: Record<string, string>, params: unknown, query: unknown, header: string | null, start: number) => {
    const principal = await auth.principal(header);
    if (principal === null || refusal(read.auth, principal, raw.id)) return undefined;
    return load(request, params, query, principal, start);
  };

  const answer: FastRead = (request, raw, start) => {
    // HEAD reaches a GET route too.
    if (request.method !== "GET") return undefined;
    const p = params(raw);
    if (p === undefined) return undefined;
    const q: Decoded | undefined = noQuery ? EMPTY : query(queryOf(request.url));
    if (q === undefined) return undefined;
    const headers = request.headers;
    // The app answers 413 to a Content-Length over its limit before routing; a GET's body is otherwise ignored
    // (a chunked one too), so only a declared length sends the request the app's way.
    if (headers.get("content-length") !== null) return undefined;
    if (policy?.variesByOrigin(request)) return undefined;
    const header = headers.get("authorization");
    // A refused token or session (null) goes the app's way (401), as does a caller the route's level refuses
    // (the app answers the 403 from the same declaration); a session not in memory is loaded below.
    const principal = auth.peekPrincipal(header);
    if (principal === null) return undefined;
    if (principal === undefined) return miss(request, raw, p, q, header, start);
    if (refusal(read.auth, principal, raw.id)) return undefined;
    if (read.entry === undefined || peek === undefined) return load(request, p, q, principal, start);
    const e = read.entry({ params: p, query: q, principal });
    const hit = peek(e.key);
    if (hit === undefined) return load(request, p, q, principal, start);
    // A cached "nothing there": the app writes that 404 as problem+json.
    if (hit.value === null) return undefined;
    const limit = readLimit(request, principal, false);
    if (limit === false) return undefined;
    return respond(request, hit.json, hit.source, limit, start);
  };
  // Whatever goes wrong here, the app handles the request its usual way (and answers errors as problems).
  return (request, raw, start) => {
    try {
      const r = answer(request, raw, start);
      return r instanceof Promise ? r.catch(() => undefined) : r;
    } catch {
      return undefined;
    }
  };
}

/** The fast answers of every cached read among the app's routes, by route path (Bun's `routes` syntax is Elysia's). */
export function fastReads(routes: readonly { method: string; path: string; handler: unknown }[], opts: FastReadOptions): Map<string, FastRead> {
  const out = new Map<string, FastRead>();
  for (const r of routes) {
    const declared = r.method === "GET" ? cachedReadOf(r.handler) : undefined;
    if (declared === undefined) continue;
    const f = fastRead(r.path, declared.read, declared.cache, opts);
    if (f !== null) out.set(r.path, f);
  }
  return out;
}
