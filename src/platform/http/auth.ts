// Bearer-token authentication: a valid token of a live session. As an Elysia macro, `{ auth: level }` on a route
// (access.ts: "user", "admin", "owner", "owner-or-admin") gives the handler `principal` or answers 401/403.
import { Elysia } from "elysia";
import { AppError, unauthorized } from "./errors.ts";
import { refusal, type AuthLevel } from "./access.ts";
import { verifyJwt, type Claims } from "./jwt.ts";
import type { Sessions, SessionState } from "./sessions.ts";
import { beforeWrite } from "../db/write-turn.ts";

export interface Principal {
  userId: number;
  isAdmin: boolean;
  sessionId: string;
}

/**
 * Verified tokens, so a client's repeated requests skip the HMAC and JSON work. Keyed by the whole
 * Authorization value, so a hit needs no parsing of it; only the canonical spelling (`Bearer <token>`, one
 * space, at most MAX_CACHED_HEADER characters) is stored, so spelling variants of one token cannot fill it.
 * Bounded; an entry is only used until the token's own expiry.
 */
const MAX_CACHED_HEADER = 2_048;
export class TokenCache {
  private readonly map = new Map<string, { principal: Principal; exp: number }>();
  constructor(private readonly max: number) {}
  get(authorization: string, now: number): Principal | undefined {
    const hit = this.map.get(authorization);
    if (!hit) return undefined;
    if (hit.exp <= now) {
      this.map.delete(authorization);
      return undefined;
    }
    return hit.principal;
  }
  set(authorization: string, claims: Claims, principal: Principal): void {
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(authorization, { principal, exp: claims.exp });
  }
}

export function authenticate(header: string | null | undefined, secret: string, cache?: TokenCache): Principal | null {
  if (!header || header.length < 8) return null;
  const now = Math.floor(Date.now() / 1000);
  const cached = cache?.get(header, now);
  if (cached) return cached;
  if (header.slice(0, 7).toLowerCase() !== "bearer ") return null;
  const token = header.slice(7).trim();
  const claims = verifyJwt(token, secret, now);
  if (!claims) return null;
  const userId = Number(claims.sub);
  if (!Number.isSafeInteger(userId)) return null;
  const principal: Principal = { userId, isAdmin: claims.adm, sessionId: claims.sid };
  if (header.length <= MAX_CACHED_HEADER && header === "Bearer " + token) cache?.set(header, claims, principal);
  return principal;
}

/** The principal a token stands for given its session's current state; null when the session is not valid. */
function withSession(p: Principal, s: SessionState | null): Principal | null {
  if (s === null || s.userId !== p.userId) return null;
  // Admin rights are the account's now, whatever the token said at login: a demotion takes them from every
  // token of the account, a promotion gives them to every one (bun run users, users-cli.ts).
  return p.isAdmin === s.isAdmin ? p : { ...p, isAdmin: s.isAdmin };
}

/** What a route of `level` decides for a caller after the session check (null: refused): it, or its 401 or 403. */
function decision(principal: Principal | null, level: AuthLevel, pathId: string | undefined): Principal | AppError {
  return principal === null ? unauthorized() : (refusal(level, principal, pathId) ?? principal);
}

/** Token and session, checked together: the one way the app and the cached-read fast path authenticate. */
export class Auth {
  private readonly tokens = new TokenCache(10_000);
  private readonly admitted = new WeakMap<Request, Principal | AppError>();
  constructor(
    readonly secret: string,
    readonly sessions: Sessions,
  ) {}

  /** The token's verified claims only (no session check): Idempotency-Key scopes, nothing that grants access. */
  tokenPrincipal(header: string | null | undefined): Principal | null {
    return authenticate(header, this.secret, this.tokens);
  }

  async principal(header: string | null | undefined): Promise<Principal | null> {
    const p = authenticate(header, this.secret, this.tokens);
    if (p === null) return null;
    return withSession(p, await this.sessions.state(p.sessionId, p.userId));
  }

  /**
   * The caller of `request` on a route of `level` (`pathId`: the path's `:id` as sent), or its 401 or 403 thrown:
   * the one decision of the app's auth, which the body parser, the auth macro and the fast writes ask, the first
   * before the body is read. Asked again, it gives the same answer (a failure to load the session is not a
   * decision: asked again, it is tried again), until readmit decides again.
   */
  async admit(request: Request, level: AuthLevel, pathId: string | undefined): Promise<Principal> {
    let decided = this.admitted.get(request);
    if (decided === undefined) {
      decided = decision(await this.caller(request.headers.get("authorization")), level, pathId);
      this.admitted.set(request, decided);
    }
    if (decided instanceof AppError) throw decided;
    return decided;
  }

  /**
   * admit once the body has arrived and the write is about to run (the auth macro's transform, which Elysia runs
   * after the body parser; a fast write in its turn of the write lane). A refusal decided before stands; an
   * admission is decided again: the session may have been revoked, or the account's rights changed, while the
   * body was arriving (until its deadline, bodyArrivalMs) and the write waited for its turn, and the write must not commit
   * with rights its token no longer has.
   */
  readmit(request: Request, level: AuthLevel, pathId: string | undefined): Promise<Principal> {
    if (!(this.admitted.get(request) instanceof AppError)) this.admitted.delete(request);
    // And once more just before the request's write transaction begins (in a turn of the write lane): what the
    // handler does first (a new password's hash, the Idempotency-Key's claim) leaves no moment for a revocation.
    beforeWrite(() => this.recheck(request, level, pathId));
    return this.admit(request, level, pathId);
  }

  /** readmit's decision made again, synchronously when the session is in memory; throws the refusal. */
  private recheck(request: Request, level: AuthLevel, pathId: string | undefined): void | Promise<unknown> {
    const p = this.peekPrincipal(request.headers.get("authorization"));
    if (p === undefined) {
      this.admitted.delete(request);
      return this.admit(request, level, pathId);
    }
    const decided = decision(p, level, pathId);
    if (decided instanceof AppError) throw decided;
  }

  /** Moves admit's decision to the request the app is given instead (a copy holding the body already read). */
  carry(from: Request, to: Request): void {
    const decided = this.admitted.get(from);
    if (decided !== undefined) this.admitted.set(to, decided);
  }

  /** Whether admit has refused `request` (401 or 403): its answer needs none of its body. */
  refused(request: Request): boolean {
    return this.admitted.get(request) instanceof AppError;
  }

  /** The principal after the session check: from memory when the session is there (peekPrincipal), else loaded. */
  async caller(header: string | null | undefined): Promise<Principal | null> {
    const peeked = this.peekPrincipal(header);
    return peeked === undefined ? this.principal(header) : peeked;
  }

  /** Synchronously, from memory: the principal, null when refused, undefined when the session is not in memory. */
  peekPrincipal(header: string | null | undefined): Principal | null | undefined {
    const p = authenticate(header, this.secret, this.tokens);
    if (p === null) return null;
    const s = this.sessions.peek(p.sessionId);
    return s === undefined ? undefined : withSession(p, s);
  }
}

/**
 * `{ auth: level }` on a route. The whole decision (token, session, level) is Auth.admit, made before the body is
 * read: by the body parser (request-context.ts), which Elysia runs before every route hook, for a route with a
 * body (or before the app, serve.ts and fast-write.ts). An anonymous or revoked caller gets its 401, and a caller
 * the level refuses (another user's `:id`, a non-admin on an admin route) its 403, before any of its input is
 * looked at. `transform`, which Elysia runs after the body parser, before it validates params and query (a macro's
 * `resolve` runs after validation) and before any `beforeHandle` (the Idempotency-Key's claim), decides again
 * (Auth.readmit) what was admitted while the body arrived, so nothing is written with rights revoked meanwhile.
 * `resolve` only hands the principal to the handler, typed.
 */
export function authPlugin(auth: Auth) {
  // One transform per level, shared by its routes, so that routeAuthLevels can read a route's level off its hooks.
  const transforms = new Map<AuthLevel, (ctx: { request: Request; params?: unknown }) => Promise<void>>();
  const transformOf = (level: AuthLevel) => {
    let fn = transforms.get(level);
    if (fn === undefined) {
      fn = async (ctx) => {
        (ctx as unknown as { principal: Principal }).principal = await auth.readmit(ctx.request, level, (ctx.params as Record<string, string> | undefined)?.id);
      };
      transforms.set(level, fn);
      levelOf.set(fn, level);
    }
    return fn;
  };
  return new Elysia({ name: "auth", seed: auth.secret }).macro({
    auth: (level: AuthLevel) => ({
      detail: { security: [{ bearer: [] }] },
      transform: transformOf(level),
      resolve(ctx) {
        return { principal: (ctx as unknown as { principal: Principal }).principal };
      },
    }),
  });
}

/** The level behind each of the auth macro's transform functions. */
const levelOf = new WeakMap<object, AuthLevel>();

/** Per "METHOD path", the level of the routes that declare one with the auth macro (read once the routes exist). */
export function routeAuthLevels(routes: readonly { method: string; path: string; hooks?: Record<string, unknown> }[]): Map<string, AuthLevel> {
  const out = new Map<string, AuthLevel>();
  for (const r of routes) {
    const hooks = r.hooks?.transform;
    for (const h of Array.isArray(hooks) ? hooks : hooks === undefined ? [] : [hooks]) {
      const fn = typeof h === "function" ? h : (h as { fn?: unknown } | null)?.fn;
      const level = typeof fn === "function" ? levelOf.get(fn) : undefined;
      if (level !== undefined) out.set(`${r.method} ${r.path}`, level);
    }
  }
  return out;
}
