// Request id, body limit, the one error handler, and one JSON log line per request.
// Registered first in the composition root, so every route below it is covered.
import { Elysia, ValidationError } from "elysia";
import type { Logger } from "../observability/logger.ts";
import { pathnameOf, type HttpMetrics } from "../observability/metrics.ts";
import { routeLabeler } from "./route-template.ts";
import { AppError, problem, problemOf, problemResponse, unprocessable, type FieldError, type Problem } from "./errors.ts";
import { INEXACT_NUMBER_MESSAGE, parseJsonBody } from "./json-body.ts";
import { JSON_CONTENT_TYPE, putInto, putOnto, type HeaderPolicy } from "./headers.ts";
import { fieldMessage, inexactNumberMessage } from "./field-messages.ts";
import { allows, pathTemplate } from "./allowed-methods.ts";
import type { AuthLevel } from "./access.ts";

const REQUEST_ID_RE = /^[A-Za-z0-9._:\-]{1,128}$/;

interface RequestMeta {
  id: RequestId;
  start: number;
}

function fieldOf(path: string | undefined, on: string): string {
  const p = (path ?? "").replace(/^\//, "").replace(/\//g, ".");
  return p === "" || p === "root" ? on : p;
}

/**
 * Elysia checks coerced params and query values one property at a time and then reports `on: "property"`
 * without the property's name: find the raw param or query value that coerces to the rejected one.
 */
function propertyName(value: unknown, raw: Record<string, unknown>[]): string | undefined {
  for (const source of raw) {
    for (const [k, v] of Object.entries(source)) {
      if (v === value || (typeof v === "string" && v !== "" && Number(v) === value)) return k;
    }
  }
  return undefined;
}

function validationErrors(error: ValidationError, raw: Record<string, unknown>[]): FieldError[] {
  let on = (error as unknown as { type?: string }).type ?? "body";
  if (on === "property") on = propertyName(error.value, raw) ?? "parameter";
  const out: FieldError[] = [];
  const fields = new Set<string>();
  for (const e of error.all) {
    const field = fieldOf((e as { path?: string }).path, on);
    // One message per field: TypeBox reports a missing property twice ("missing", then "expected string").
    if (fields.has(field)) continue;
    fields.add(field);
    // A query key given more than once (or as a bracketed list) arrives as an array (QuerySchema in models.ts):
    // say that, not its format.
    const message = on === "query" && raw.some((source) => Array.isArray(source[field]))
      ? "must be a single value, given once"
      : (fieldMessage(e as Parameters<typeof fieldMessage>[0]) ?? (e as { summary?: string }).summary ?? (e as { message?: string }).message ?? "invalid");
    out.push({ field, message });
  }
  return out.length > 0 ? out : [{ field: on, message: "invalid" }];
}

/** The 422 of a validation error; `raw` holds the request's params and query as they came (see propertyName). */
export function validationProblem(error: ValidationError, raw: Record<string, unknown>[]): Problem {
  return problem(422, "The request did not validate", validationErrors(error, raw));
}

/** A request id that is safe to write into a JSON string as it is: a UUID of ours, or one that passed REQUEST_ID_RE. */
export type RequestId = string & { readonly __requestId: true };

/** The client's x-request-id when it is sane, else a new one. */
export function requestIdOf(request: Request): RequestId {
  const given = request.headers.get("x-request-id");
  return (given && REQUEST_ID_RE.test(given) ? given : crypto.randomUUID()) as RequestId;
}

/** JSON string literals of the route templates and methods seen so far (a bounded set). */
const jsonLiterals = new Map<string, string>();
function jsonLiteral(value: string, cacheable: boolean): string {
  let lit = jsonLiterals.get(value);
  if (lit === undefined) {
    lit = JSON.stringify(value);
    if (cacheable && jsonLiterals.size < 1_000) jsonLiterals.set(value, lit);
  }
  return lit;
}

/** Milliseconds rounded to hundredths, as JSON.stringify writes Math.round(ms * 100) / 100, without a float-to-text conversion. */
export function durationText(ms: number): string {
  const hundredths = Math.round(ms * 100);
  if (!(hundredths >= 0 && hundredths < 2 ** 31)) return String(Math.round(ms * 100) / 100);
  const whole = (hundredths / 100) | 0;
  const frac = hundredths - whole * 100;
  if (frac === 0) return "" + whole;
  if (frac % 10 === 0) return whole + "." + frac / 10;
  return whole + (frac < 10 ? ".0" : ".") + frac;
}

// The members of a request's log line: the fixed ones (method, route, status) and the varying ones
// (duration_ms, request_id). A RequestId's characters need no escaping (see requestIdOf).
const fixedMembers = (methodJson: string, routeJson: string, status: number) =>
  '"method":' + methodJson + ',"route":' + routeJson + ',"status":' + status;
const durationMember = (durationMs: number) => '"duration_ms":' + durationText(durationMs);
const idMember = (id: RequestId) => '"request_id":"' + id + '"';

/**
 * The one log line of a request (also written by the cached reads answered in front of Elysia, src/platform/http/fast-read.ts,
 * through requestLogger): method, route, status, duration_ms, request_id. Built as a string: it runs for
 * every request.
 */
export function logRequest(
  logger: Logger,
  method: string,
  route: string,
  status: number,
  durationMs: number | undefined,
  id: RequestId | undefined,
  routeIsTemplate = true,
): void {
  let json = fixedMembers(jsonLiteral(method, true), jsonLiteral(route, routeIsTemplate), status);
  if (durationMs !== undefined) json += "," + durationMember(durationMs);
  if (id !== undefined) json += "," + idMember(id);
  logger.infoJson("request", json);
}

/** logRequest for one method, route and status, prepared once: the same line from fewer pieces (the fast path's). */
export function requestLogger(logger: Logger, method: string, route: string, status: number): (durationMs: number, id: RequestId) => void {
  const line = logger.preparedInfo("request", fixedMembers(JSON.stringify(method), JSON.stringify(route), status));
  return (durationMs, id) => line(durationMember(durationMs) + "," + idMember(id));
}

/** The most characters of a raw path a log line carries, so a request cannot amplify itself into the logs. */
const LOGGED_PATH_MAX = 256;

/** A raw request path as a log line carries it: its first LOGGED_PATH_MAX characters, and its length when cut. */
export function loggedPath(path: string): string {
  return path.length <= LOGGED_PATH_MAX ? path : `${path.slice(0, LOGGED_PATH_MAX)}…[${path.length} chars]`;
}

/**
 * The one observer of a finished request, whichever way it was answered: its log line and its metrics series,
 * under one route label. The label is Elysia's route template; a request answered before routing (a refusal
 * in onRequest, a preflight) or matching no route is labelled from the same route table (see routeLabeler), and
 * a known path asked with another method (405, OPTIONS) with the template of the path (pathTemplate; bounded like
 * the routes). A path no route names is "unmatched" in the metrics and its path, cut (loggedPath), in the log.
 */
export interface RequestObserver {
  observe(method: string, route: string | undefined, path: string, status: number, durationMs: number | undefined, id: RequestId | undefined): void;
  /** The answers of one route and status (200 unless said) given in front of the app (fast-read.ts, fast-write.ts), prepared once. */
  answers(method: string, route: string, status?: number): (durationMs: number, id: RequestId) => void;
}

export interface RequestObserverOptions {
  /** Null or absent: log lines only (METRICS_ENABLED=false). */
  metrics?: HttpMetrics | null;
  /** The app's routes, read once the app is complete (labels for requests answered before routing). */
  routes?: () => readonly { method: string; path: string }[];
}

export function requestObserver(logger: Logger, opts: RequestObserverOptions = {}): RequestObserver {
  const metrics = opts.metrics ?? null;
  let labeler: ((method: string, path: string) => string) | undefined;
  let templateOf: ((path: string) => string | undefined) | undefined;
  return {
    observe(method, route, path, status, durationMs, id) {
      let label = route ?? (labeler ??= routeLabeler(opts.routes?.() ?? []))(method, path);
      if (label === "unmatched") label = (templateOf ??= pathTemplate(opts.routes?.() ?? []))(path) ?? label;
      const matched = label !== "unmatched";
      logRequest(logger, method, matched ? label : loggedPath(path), status, durationMs, id, matched);
      if (metrics !== null && durationMs !== undefined) metrics.observe(method, label, status, durationMs / 1000);
    },
    answers(method, route, status = 200) {
      const log = requestLogger(logger, method, route, status);
      if (metrics === null) return log;
      const series = metrics.seriesOf(method, route, status);
      return (durationMs, id) => {
        log(durationMs, id);
        series.observe(durationMs / 1000);
        metrics.fastPathAnswers++;
      };
    },
  };
}

/** The log line of an error no mapping expected (answered 500), whichever way the request was answered. */
export function logUnhandled(logger: Logger, id: string, request: Request, error: unknown): void {
  logger.error("unhandled error", {
    request_id: id,
    method: request.method,
    path: loggedPath(new URL(request.url).pathname),
    error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
  });
}

export interface RequestContextOptions {
  logger: Logger;
  /** Writes each request's log line and metrics. */
  observer: RequestObserver;
  bodyLimit: number;
  instanceId: string;
  headers?: HeaderPolicy;
  /** Per "METHOD route", the most values a body may hold (filled once the routes exist; see bodyValueCaps). */
  valueCaps?: ReadonlyMap<string, number>;
  /**
   * The access level of each "METHOD route" that has one (filled once the routes exist; auth.ts routeAuthLevels),
   * and the app's auth decision (Auth.admit): such a route answers its 401 or 403 before its body is read.
   */
  auth?: { levels: ReadonlyMap<string, AuthLevel>; admit: (request: Request, level: AuthLevel, pathId: string | undefined) => Promise<unknown> };
  /** The `Allow` value of a path, undefined for a path no route matches (allowed-methods.ts; read once the routes exist). */
  allowed?: (pathname: string) => string | undefined;
  /** Per "METHOD route", the body's schema (filled once the routes exist): what a refused number's field should hold. */
  bodySchemas?: ReadonlyMap<string, unknown>;
  /** The "METHOD route"s whose body may be left out (filled once the routes exist; see optionalBodyRouteKeys). */
  optionalBodies?: ReadonlySet<string>;
  /**
   * Whether the listener `request` came to does not serve its path (/internal/* on the public port, serve.ts):
   * it gets the 404 of a path no route matches, with the same headers and log line, before anything else (a
   * preflight's 204 included) looks at it.
   */
  unserved?: (request: Request) => boolean;
}

const noRoute = () => problem(404, "No route matches this method and path");

/**
 * Elysia checks an optional body against its schema only when it is a non-empty object: a string, a number, a
 * boolean or an empty array went to the handler unchecked. What is sent must be an object; nothing (an empty
 * body, which the parser reads as null) is what "optional" allows.
 */
function objectOrNothing(value: unknown): unknown {
  if (value === null || (typeof value === "object" && !Array.isArray(value))) return value;
  throw unprocessable([{ field: "body", message: "must be a JSON object, or left out" }]);
}

/**
 * The parser's 422 for numbers not kept exactly (json-body.ts), each field's message said for what the route's
 * body `schema` wants there (field-messages.ts inexactNumberMessage): the parser knows no schema.
 */
function inexactNumbersSaid(err: unknown, schema: unknown): unknown {
  if (schema === undefined || !(err instanceof AppError) || err.status !== 422 || err.errors === undefined) return err;
  const errors = err.errors.map((e) => (e.message === INEXACT_NUMBER_MESSAGE ? { field: e.field, message: inexactNumberMessage(schema, e.field) } : e));
  return new AppError(err.status, err.message, errors, err.headers);
}

/** When the server received the requests it hands to the app (serve.ts), by the Request the app is given. */
const arrivals = new WeakMap<Request, number>();

/**
 * The performance.now() time `request` arrived at the server: its log line and metrics measure from there, not
 * from the moment the app is given it, which for a write comes after its body arrived and its turn in the write
 * lane (a body that never came, answered 408 at its deadline (bodyArrivalMs), would otherwise be logged as taking nothing).
 */
export function rememberArrival(request: Request, start: number): void {
  arrivals.set(request, start);
}

export function requestContext(opts: RequestContextOptions) {
  const meta = new WeakMap<Request, RequestMeta>();
  const { logger, observer, bodyLimit } = opts;
  // Answered here, before routing: observed here too (Elysia runs no afterResponse hook for them).
  const early = (request: Request, id: RequestId, start: number, response: Response): Response => {
    observer.observe(request.method, undefined, pathnameOf(request.url), response.status, performance.now() - start, id);
    return response;
  };
  const policy = opts.headers;
  const parseBody = (request: Request, contentType: string, key: string) => {
    const parsed = parseJsonBody(request, contentType, bodyLimit, opts.valueCaps?.get(key)).catch((err) => {
      throw inexactNumbersSaid(err, opts.bodySchemas?.get(key));
    });
    return opts.optionalBodies?.has(key) ? parsed.then(objectOrNothing) : parsed;
  };

  return new Elysia({ name: "request-context" })
    .onRequest(({ request }) => {
      const id = requestIdOf(request);
      const start = arrivals.get(request) ?? performance.now();
      meta.set(request, { id, start });
      if (opts.unserved?.(request)) {
        const headers: Record<string, string> = { "x-request-id": id };
        policy?.decorate(request, putInto(headers));
        return early(request, id, start, problemResponse(noRoute(), headers));
      }
      const preflight = policy?.preflight(request, (r) => opts.allowed?.(pathnameOf(r.url)), { "x-request-id": id });
      if (preflight !== undefined) return early(request, id, start, preflight);
      const length = request.headers.get("content-length");
      if (length !== null && Number(length) > bodyLimit) {
        const headers: Record<string, string> = { "x-request-id": id };
        policy?.decorate(request, putInto(headers));
        return early(request, id, start, problemResponse(problem(413, `Request body exceeds ${bodyLimit} bytes`), headers));
      }
    })
    // One body parser for every route: enforces the size limit (also for bodies without Content-Length,
    // and for requests handed to app.handle directly), and turns bad JSON into a 400.
    .onParse({ as: "global" }, ({ request, contentType, route, params }) => {
      const key = request.method + " " + route;
      // Elysia parses before any route hook, the auth macro's included: the caller the route refuses (401, 403)
      // is refused here, without reading what it sent.
      const level = opts.auth?.levels.get(key);
      if (level !== undefined) return opts.auth!.admit(request, level, (params as Record<string, string> | undefined)?.id).then(() => parseBody(request, contentType, key));
      return parseBody(request, contentType, key);
    })
    // x-request-id goes on here rather than through set.headers in onRequest: for a handler that returns a
    // finished Response (the cached reads), a non-empty set.headers makes Elysia rebuild the Response
    // (new Headers, body re-wrapped as a stream), which costs more than the rest of the request.
    .onAfterHandle({ as: "global" }, ({ request, responseValue, set }) => {
      const id = meta.get(request)?.id;
      if (id === undefined) return;
      if (responseValue instanceof Response) {
        responseValue.headers.set("x-request-id", id);
        policy?.decorate(request, putOnto(responseValue.headers));
      } else {
        set.headers["x-request-id"] = id;
        // An object becomes JSON (Elysia's Response.json): its content type, the one of every JSON answer.
        if (typeof responseValue === "object" && responseValue !== null) set.headers["content-type"] ??= JSON_CONTENT_TYPE;
        policy?.decorate(request, putInto(set.headers));
      }
    })
    .onError({ as: "global" }, ({ code, error: raw, request, set, params, query }) => {
      // Elysia wraps whatever the parser throws in a ParseError; ours are AppErrors with their own status.
      const cause = (raw as { cause?: unknown }).cause;
      const error = code === "PARSE" && cause instanceof AppError ? cause : raw;
      const id = meta.get(request)?.id ?? (crypto.randomUUID() as RequestId);
      const headers: Record<string, string> = { "x-request-id": id };
      let p;
      if (error instanceof AppError) {
        p = problemOf(error).problem;
        Object.assign(headers, error.headers);
      } else if (code === "VALIDATION") {
        p = validationProblem(error as ValidationError, [params ?? {}, query ?? {}]);
      } else if (code === "PARSE") {
        p = problem(400, "The request body is not valid JSON");
      } else if (code === "NOT_FOUND") {
        // A known path with another method: 405 with Allow (RFC 9110), or, for an OPTIONS that is not a CORS
        // preflight (those are answered in onRequest), the 204 that says what the path allows.
        const allow = opts.allowed?.(pathnameOf(request.url));
        if (allow !== undefined && request.method === "OPTIONS") {
          headers.allow = allow;
          policy?.decorate(request, putInto(headers));
          set.status = 204;
          return new Response(null, { status: 204, headers });
        } else if (allow === undefined || allows(allow, request.method)) p = noRoute();
        else {
          headers.allow = allow;
          p = problem(405, `This path does not answer ${request.method}; it answers ${allow}`);
        }
      } else if (code === "INVALID_COOKIE_SIGNATURE" || code === "INVALID_FILE_TYPE") {
        p = problem(400, "The request is malformed");
      } else {
        const answer = problemOf(error);
        if (answer.unexpected) logUnhandled(logger, id, request, error);
        Object.assign(headers, answer.headers);
        p = answer.problem;
      }
      policy?.decorate(request, putInto(headers));
      set.status = p.status;
      return problemResponse(p, headers);
    })
    .onAfterResponse({ as: "global" }, ({ request, route, set, path, responseValue }) => {
      const m = meta.get(request);
      const status = responseValue instanceof Response ? responseValue.status : typeof set.status === "number" ? set.status : 200;
      observer.observe(request.method, route || undefined, path, status, m ? performance.now() - m.start : undefined, m?.id);
    });
}
