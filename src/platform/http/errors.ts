// Domain errors are values with a status; one onError (registered before the modules) turns every
// error into application/problem+json. Nothing else writes error bodies.
import { databaseUnavailable } from "../db/errors.ts";

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

const SLUGS: Record<number, string> = {
  400: "bad-request",
  401: "unauthorized",
  403: "forbidden",
  404: "not-found",
  405: "method-not-allowed",
  408: "request-timeout",
  409: "conflict",
  413: "payload-too-large",
  415: "unsupported-media-type",
  422: "validation-error",
  429: "rate-limited",
  500: "internal-error",
  503: "service-unavailable",
};

export class AppError extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly errors?: FieldError[],
    /** Extra response headers (Retry-After, fly-replay). */
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = "AppError";
  }
}

export const badRequest = (detail: string) => new AppError(400, detail);
export const unauthorized = (detail = "Missing or invalid bearer token") =>
  new AppError(401, detail, undefined, { "www-authenticate": 'Bearer realm="api"' });
export const forbidden = (detail = "You are not allowed to do this") => new AppError(403, detail);
export const notFound = (detail = "Not found") => new AppError(404, detail);
export const conflict = (detail: string, headers?: Record<string, string>) => new AppError(409, detail, undefined, headers);
export const payloadTooLarge = (limit: number) => new AppError(413, `Request body exceeds ${limit} bytes`);
export const unprocessable = (errors: FieldError[], detail = "The request did not validate") =>
  new AppError(422, detail, errors);
export const tooManyRequests = (retryAfterSeconds: number) =>
  new AppError(429, "Too many requests; retry later", undefined, { "retry-after": String(retryAfterSeconds) });
export const serviceUnavailable = (detail = "A dependency is unavailable; retry later") => new AppError(503, detail);

/**
 * The database's passing conditions (a write lock held by another process past the write's wait, a full disk)
 * as the 503 they are, with Retry-After; null for any other error. Nothing of such a write has committed.
 */
export function fromDatabase(err: unknown): AppError | null {
  const unavailable = databaseUnavailable(err);
  return unavailable ? new AppError(503, unavailable.message, undefined, { "retry-after": "1" }) : null;
}

export function problem(status: number, detail: string, errors?: FieldError[]): Problem {
  const body: Problem = {
    type: `https://neodyme-edge.dev/problems/${SLUGS[status] ?? "error"}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
  };
  if (errors && errors.length > 0) body.errors = errors;
  return body;
}

/** The answer an error thrown by a handler stands for: its problem, its extra headers, and whether it was unexpected (500). */
export interface ErrorAnswer {
  problem: Problem;
  headers?: Record<string, string>;
  /** A 500: a defect, to be logged with the request's id. */
  unexpected: boolean;
}

/**
 * The one mapping of a thrown error to its problem, for the app's onError and the answers given in front of it:
 * an AppError as it says, a passing database condition as its 503, another error carrying a 4xx (or 503) status
 * as that status, anything else as a 500.
 */
export function problemOf(thrown: unknown): ErrorAnswer {
  const error = fromDatabase(thrown) ?? thrown;
  if (error instanceof AppError) return { problem: problem(error.status, error.message, error.errors), headers: error.headers, unexpected: false };
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === "number" && ((status >= 400 && status < 500) || status === 503)) {
    return { problem: problem(status, (error as Error).message || "Request rejected"), unexpected: false };
  }
  return { problem: problem(500, "Something went wrong on our side; the request id identifies it in our logs"), unexpected: true };
}

export function problemResponse(p: Problem, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(p), {
    status: p.status,
    headers: { ...headers, "content-type": "application/problem+json" },
  });
}
