// The declared writes answered in front of the framework. For every route mountWrite() made (declared-write.ts),
// the server gets a Bun `routes` entry built from the same declaration: the same id rule, body reading
// (json-body.ts) and body check (the body schema, compiled), the same Auth, write limit, headers, log line and
// metrics, and the same mapping of errors to problems (errors.ts problemOf). It declines (hands the request to the
// app, untouched or with the body it read) whatever is unusual, always before the write runs: another method,
// an id that is not canonical, an Idempotency-Key, an Origin the headers depend on, a body without a declared
// length or over the limit, a token, session or access level refused, a rate-limit refusal, a failure before the
// body is read (loading the session, deciding the limit: the app meets it and answers it its way), a body the
// app would refuse (it answers the 400/413/415/422 itself), an instance that is not the primary. Once the write
// has run, it answers whatever happens: the result, or the problem the app's onError would give.
import { TransformKind } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Auth, Principal } from "./auth.ts";
import type { RateLimiter, RatePolicy } from "./rate-limit.ts";
import { carryDecision, handOverDecision, quotaKey, rateLimitHeader } from "./rate-limits.ts";
import { answerHeaders, JSON_CONTENT_TYPE, putInto, type HeaderPolicy } from "./headers.ts";
import { declaresBody, identityEncoded, jsonOfBody, readLimited } from "./json-body.ts";
import { JSON_MAX_VALUES } from "./json-depth.ts";
import { bodyValueCap } from "./validation-cost.ts";
import { problemOf, problemResponse } from "./errors.ts";
import { logUnhandled, requestIdOf, type RequestId, type RequestObserver } from "./request-context.ts";
import { declaredWriteOf, type DeclaredWrite } from "./declared-write.ts";
import { paramsReader } from "./decimal-reader.ts";
import type { Logger } from "../observability/logger.ts";
import { pathnameOf } from "../observability/metrics.ts";

/**
 * What the server's route calls, before the write lane: the answer (a body that could not be read), the request
 * to hand to the app (the one it was given, or a copy holding the body already read, with any rate-limit decision
 * taken carried over), or the write, ready to run in a turn of the lane. Everything that waits on the network
 * (the session, the limiter, the body's arrival) is done before: a client sending its body slowly holds no turn.
 */
export type FastWrite = (request: Request, params: Record<string, string>, start: number) => Promise<Response | Request | ReadyWrite>;
/** A fast write whose request is read and checked: runs the write and answers whatever happens. */
export type ReadyWrite = () => Promise<Response>;

export interface FastWriteOptions {
  /** The app's own token and session checks. */
  auth: Auth;
  /** The app's response headers (headers.ts); a request whose answer depends on its Origin declines. */
  headers?: HeaderPolicy;
  /** The app's write limit (rate-limits.ts), decided here the same way for the requests answered here. */
  rateLimit?: { limiter: RateLimiter; policy: RatePolicy };
  /** BODY_LIMIT_BYTES: the app's body limit. */
  bodyLimit: number;
  /** False on a replica: the app's replica guard answers its writes. */
  isPrimary: () => boolean;
  /** The app's observer: the log line and metrics of every answer. */
  observer: Pick<RequestObserver, "answers" | "observe">;
  /** Where an unexpected error (a 500) is logged, as the app logs it. */
  logger: Logger;
}

/** A copy of `request` holding `body` (the original's is read), for the app. */
function withBody(request: Request, body: Uint8Array | ReadableStream<Uint8Array>): Request {
  const copy = new Request(request.url, { method: request.method, headers: request.headers, body: body as Uint8Array<ArrayBuffer> });
  carryDecision(request, copy);
  return copy;
}

/**
 * A write going the app's way, with its body read (a copy holding it), so that it waits for a slow body before
 * the write lane rather than in a turn. A request without a body, or with a declared length over the limit (the
 * app answers 413 without reading it), is left as it is. A read that fails (past the limit on a chunked body, the
 * client gone) leaves a copy whose body fails the same way when the app reads it: the app answers it as before.
 */
export async function bodyArrived(request: Request, bodyLimit: number): Promise<Request> {
  if (!declaresBody(request.headers) || Number(request.headers.get("content-length")) > bodyLimit) return request;
  try {
    return withBody(request, await readLimited(request, bodyLimit));
  } catch (err) {
    return withBody(request, new ReadableStream({ start: (c) => c.error(err) }));
  }
}

/**
 * Whether a body valid under `schema` reaches the handler as it was sent: no defaults filled in, no transforms
 * (the app would hand the handler a changed value, which a check alone does not reproduce).
 */
function takenAsSent(schema: unknown, seen = new Set<unknown>()): boolean {
  if (typeof schema !== "object" || schema === null || seen.has(schema)) return true;
  seen.add(schema);
  if ("default" in schema || TransformKind in schema) return false;
  return Object.values(schema).every((v) => takenAsSent(v, seen));
}

/**
 * The fast answer of one declared write at `route` (the app's own route path), or null when its params are not
 * decimals or its body would not reach the handler as sent.
 */
export function fastWrite(route: string, write: DeclaredWrite, opts: FastWriteOptions): FastWrite | null {
  const params = paramsReader(write.params);
  if (params === null || !takenAsSent(write.body)) return null;
  const { auth, rateLimit, headers: policy, bodyLimit, isPrimary, observer, logger } = opts;
  const method = write.method;
  const body = TypeCompiler.Compile(write.body);
  // The same bound on a body's values as the app's parser gives this route (validation-cost.ts bodyValueCaps).
  const maxValues = bodyValueCap(write.body, JSON_MAX_VALUES);
  const answered = observer.answers(method, route, write.status);
  const succeeded = answerHeaders(policy, { "content-type": JSON_CONTENT_TYPE });

  /** The problem the app's onError gives for `err`, observed as the app observes it. */
  const failed = (request: Request, id: RequestId, err: unknown, start: number): Response => {
    const answer = problemOf(err);
    if (answer.unexpected) logUnhandled(logger, id, request, err);
    const out: Record<string, string> = { "x-request-id": id, ...answer.headers };
    policy?.decorate(request, putInto(out));
    const response = problemResponse(answer.problem, out);
    observer.observe(method, route, pathnameOf(request.url), answer.problem.status, performance.now() - start, id);
    return response;
  };

  return async (request, raw, start) => {
    if (request.method !== method) return request;
    const p = params(raw);
    if (p === undefined) return request;
    const headers = request.headers;
    if (headers.get("idempotency-key") !== null || policy?.variesByOrigin(request) || !isPrimary()) return request;
    // A chunked body, one over the limit (the app answers 413 before reading it), or a compressed one (the app
    // answers 415), goes the app's way.
    const length = headers.get("content-length");
    if (length === null || !(Number(length) <= bodyLimit) || !identityEncoded(headers)) return request;
    let principal: Principal;
    let limit: string | undefined;
    try {
      // The app's own decision (a session not in memory is loaded as the app would); a caller it refuses goes the
      // app's way, which answers the 401 or 403 decided here without reading the body.
      principal = await auth.admit(request, write.auth, raw.id);
      // The app decides the write limit before anything else; here, for a caller known to be who it says. The
      // decision goes with the request should it decline from here on, so the app neither counts it again nor
      // decides otherwise (it writes the 429 of a refusal from it).
      if (rateLimit !== undefined) {
        const d = await rateLimit.limiter.shared(quotaKey("write", principal), rateLimit.policy);
        handOverDecision(request, d);
        if (!d.allowed) return request;
        limit = rateLimitHeader(d);
      }
    } catch {
      // A refused caller (the app answers the decision made here), or the session or the limiter failed (the
      // database, Redis): the app meets the same and answers it its way.
      return request;
    }
    const id = requestIdOf(request);
    // The body read, for the app, with the decision taken on the caller.
    const declineWith = (bytes: Uint8Array) => {
      const copy = withBody(request, bytes);
      auth.carry(request, copy);
      return copy;
    };
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(request, bodyLimit);
    } catch (err) {
      // The body is gone (the client went away while sending it): nothing to hand the app.
      return failed(request, id, err, start);
    }
    let input: unknown;
    try {
      input = jsonOfBody(bytes, headers.get("content-type"), maxValues);
    } catch {
      return declineWith(bytes);
    }
    if (!body.Check(input)) return declineWith(bytes);
    // From here on the write runs, in its turn: whatever happens is answered here. The caller was admitted before
    // its body arrived and its turn came: decided again now (Auth.readmit), so a session revoked or rights taken
    // meanwhile get the app's 401 or 403 and nothing is written.
    return async () => {
      let json: string;
      try {
        const now = await auth.readmit(request, write.auth, raw.id);
        json = JSON.stringify(await write.handle({ params: p, body: input, principal: now }));
      } catch (err) {
        return failed(request, id, err, start);
      }
      const response = new Response(json, { status: write.status, headers: succeeded(id, limit) });
      answered(performance.now() - start, id);
      return response;
    };
  };
}

/** The fast answers of every declared write among the app's routes, by route path and method. */
export function fastWrites(routes: readonly { method: string; path: string; handler: unknown }[], opts: FastWriteOptions): Map<string, Map<string, FastWrite>> {
  const out = new Map<string, Map<string, FastWrite>>();
  for (const r of routes) {
    const write = declaredWriteOf(r.handler);
    if (write === undefined || write.method !== r.method) continue;
    const f = fastWrite(r.path, write, opts);
    if (f === null) continue;
    const methods = out.get(r.path) ?? new Map<string, FastWrite>();
    methods.set(r.method, f);
    out.set(r.path, methods);
  }
  return out;
}
