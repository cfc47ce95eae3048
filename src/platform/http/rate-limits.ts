// The route classes and their limits: reads and writes per caller (the token's user when its session is valid,
// else the client: its IPv4 address or IPv6 /64, client-ip.ts), login attempts per client,
// registrations per client per hour (failed logins per account are counted by the login itself). Reads are
// decided in this process (no round trip on their path; reconciled with Redis in the background); the others
// by Redis in one Lua call.
import { Elysia } from "elysia";
import type { Auth, Principal } from "./auth.ts";
import { clientKeyOf } from "./client-ip.ts";
import { AppError } from "./errors.ts";
import { pathnameOf } from "../observability/metrics.ts";
import { keyMemo } from "../cache/key-memo.ts";
import type { RateDecision, RateLimiter, RatePolicy } from "./rate-limit.ts";

export interface RateLimitSettings {
  RATE_LIMIT_READ_PER_MINUTE: number;
  RATE_LIMIT_WRITE_PER_MINUTE: number;
  RATE_LIMIT_LOGIN_PER_MINUTE: number;
  RATE_LIMIT_LOGIN_IP_PER_MINUTE: number;
  RATE_LIMIT_REGISTER_PER_HOUR: number;
}

export interface RatePolicies {
  read?: RatePolicy;
  write?: RatePolicy;
  /** Failed logins of one account from one client IP. */
  login?: RatePolicy;
  /** Failed logins of one account from anywhere: the cap a distributed guesser meets. */
  loginAccount?: RatePolicy;
  loginIp?: RatePolicy;
  register?: RatePolicy;
}

const policy = (name: string, limit: number, windowSeconds: number, apart = false): RatePolicy | undefined =>
  limit > 0 ? (apart ? { name, limit, windowSeconds, apart } : { name, limit, windowSeconds }) : undefined;

const cache = new WeakMap<object, RatePolicies>();
/** The policies of a configuration (0 turns a class off). */
export function ratePolicies(s: RateLimitSettings): RatePolicies {
  let p = cache.get(s);
  if (!p) {
    p = {
      read: policy("read", s.RATE_LIMIT_READ_PER_MINUTE, 60),
      write: policy("write", s.RATE_LIMIT_WRITE_PER_MINUTE, 60),
      login: policy("login", s.RATE_LIMIT_LOGIN_PER_MINUTE, 60, true),
      loginAccount: policy("login-account", s.RATE_LIMIT_LOGIN_PER_MINUTE * 10, 60, true),
      loginIp: policy("login-ip", s.RATE_LIMIT_LOGIN_IP_PER_MINUTE, 60),
      register: policy("register", s.RATE_LIMIT_REGISTER_PER_HOUR, 3600),
    };
    cache.set(s, p);
  }
  return p;
}

/** IETF RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers): quota per window. */
export const policyHeader = (p: RatePolicy) => `"${p.name}";q=${p.limit};w=${p.windowSeconds}`;
/** IETF RateLimit: what is left now and in how many seconds the quota is whole again. */
export const rateLimitHeader = (d: RateDecision) => `"${d.policy.name}";r=${d.remaining};t=${d.resetSeconds}`;

/** 429 problem with Retry-After and both IETF headers. */
export function rateLimited(d: RateDecision): AppError {
  return new AppError(429, `Too many requests (${d.policy.name}); retry in ${d.retryAfterSeconds} s`, undefined, {
    "retry-after": String(d.retryAfterSeconds),
    "ratelimit-policy": policyHeader(d.policy),
    ratelimit: rateLimitHeader(d),
  });
}

/** Paths no limit applies to: probes and the token-guarded replica-to-primary channel. */
function exempt(path: string): boolean {
  return path === "/health" || path.startsWith("/health/") || path === "/internal" || path.startsWith("/internal/");
}

/** True for the requests some limit class applies to (the OpenAPI document lists their 429 and RateLimit by it). */
export function rateLimitApplies(method: string, pathname: string): boolean {
  return method !== "OPTIONS" && !exempt(pathname);
}

/** Decisions taken for a request before it reached the app (a fast read or write, which then declined). */
const handedOver = new WeakMap<Request, RateDecision>();

/** The app's limiter takes `d` as this request's read or write decision instead of deciding (and counting) it again. */
export function handOverDecision(request: Request, d: RateDecision): void {
  handedOver.set(request, d);
}

/** Moves a handed-over decision to the request the app is given instead (see withRoutableUrl). */
export function carryDecision(from: Request, to: Request): void {
  const d = handedOver.get(from);
  if (d !== undefined) handedOver.set(to, d);
}

export const LOGIN_PATH = "/api/v1/auth/login";
export const REGISTER_PATH = "/api/v1/users";

export interface RateLimitPluginOptions {
  limiter: RateLimiter;
  auth: Auth;
  policies: RatePolicies;
  /** The header a trusted proxy puts the client's address in (CLIENT_IP_HEADER); unset: the socket's. */
  clientIpHeader?: string;
}

/** A signed-in caller's key: its user, so that all of a user's sessions share one quota. */
const userCallerKey = (userId: number) => "u:" + userId;
const userReadKey = keyMemo((userId: number) => "read:" + userCallerKey(userId));
const userWriteKey = keyMemo((userId: number) => "write:" + userCallerKey(userId));

/** An anonymous caller's key: its client (client-ip.ts); also the scope of its Idempotency-Keys. */
export function clientCallerKey(request: Request, ipHeader: string | undefined): string {
  return "ip:" + clientKeyOf(request, ipHeader);
}

/**
 * The key of the quota a request spends in the read or write class: its user's (kept per user, key-memo.ts) when the
 * session check lets its token in, else its client's. Never the token's claims alone: a revoked token (logout,
 * everywhere or on another instance, a password change, a deletion) counts as its client on every path, so its
 * holder cannot use up its user's quota. The app's limiter and the fast reads and writes all key by this.
 */
export function quotaKey(cls: "read" | "write", caller: Principal): string;
export function quotaKey(cls: "read" | "write", caller: Principal | null, request: Request, ipHeader: string | undefined): string;
export function quotaKey(cls: "read" | "write", caller: Principal | null, request?: Request, ipHeader?: string): string {
  if (caller !== null) return cls === "read" ? userReadKey(caller.userId) : userWriteKey(caller.userId);
  return cls + ":" + clientCallerKey(request!, ipHeader);
}

/**
 * The caller a request's quota is keyed by (Auth.caller: from memory when its session is there, else loaded). A
 * failure to load the session keys it by its client: the app meets the same failure where it needs the session.
 */
async function limitedCaller(auth: Auth, request: Request): Promise<Principal | null> {
  try {
    return await auth.caller(request.headers.get("authorization"));
  } catch {
    return null;
  }
}

export function rateLimitPlugin(opts: RateLimitPluginOptions) {
  const { limiter, auth, policies } = opts;
  const ipHeader = opts.clientIpHeader;
  const decisions = new WeakMap<Request, RateDecision>();

  return new Elysia({ name: "rate-limits" })
    .onRequest(async ({ request }) => {
      const method = request.method;
      const path = pathnameOf(request.url);
      if (!rateLimitApplies(method, path)) return;
      let d: RateDecision | undefined;
      if (method === "POST" && path === LOGIN_PATH) {
        if (policies.loginIp) d = await limiter.shared("login-ip:" + clientKeyOf(request, ipHeader), policies.loginIp);
      } else if (method === "POST" && path === REGISTER_PATH) {
        if (policies.register) d = await limiter.shared("register:" + clientKeyOf(request, ipHeader), policies.register);
      } else if (method === "GET" || method === "HEAD") {
        if (policies.read) d = handedOver.get(request) ?? limiter.local(quotaKey("read", await limitedCaller(auth, request), request, ipHeader), policies.read);
      } else if (policies.write) {
        d = handedOver.get(request) ?? (await limiter.shared(quotaKey("write", await limitedCaller(auth, request), request, ipHeader), policies.write));
      }
      if (d === undefined) return;
      if (!d.allowed) throw rateLimited(d);
      decisions.set(request, d);
    })
    .onAfterHandle({ as: "global" }, ({ request, responseValue, set }) => {
      const d = decisions.get(request);
      if (d === undefined) return;
      if (responseValue instanceof Response) responseValue.headers.set("ratelimit", rateLimitHeader(d));
      else set.headers.ratelimit = rateLimitHeader(d);
    });
}

/** The limiter's and the hashing bound's counters, for /metrics (MetricsSource.extra). */
export function abuseMetrics(limiter: RateLimiter, hashing: { refused: number }) {
  return (out: string[]): void => {
    const s = limiter.stats();
    out.push(
      "# HELP rate_limited_total Requests refused with 429 by this instance.",
      "# TYPE rate_limited_total counter",
      `rate_limited_total ${s.limited}`,
      "# HELP rate_limit_store_errors_total Rate-limit calls to Redis that failed or timed out (decided by this instance alone).",
      "# TYPE rate_limit_store_errors_total counter",
      `rate_limit_store_errors_total ${s.store_errors}`,
      "# HELP rate_limit_keys_dropped_total Rate-limit keys whose limit still held that this instance dropped from memory to stay bounded (each starts again with a full quota).",
      "# TYPE rate_limit_keys_dropped_total counter",
      `rate_limit_keys_dropped_total ${s.dropped}`,
      "# HELP password_hash_refused_total Logins, registrations and password changes refused with 503 (too many hashes at once).",
      "# TYPE password_hash_refused_total counter",
      `password_hash_refused_total ${hashing.refused}`,
    );
  };
}
