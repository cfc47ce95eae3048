// Idempotency-Key on POST and PATCH (CONTRACT.md): the first request's response is kept 24 h and replayed to a
// retry with the same key and body (`idempotent-replayed: true`); the same key with another body is a 422; a
// retry while the first still runs is a 409. Keys live in SQLite (the database the writes go to, shared by a
// local cluster, and on Fly the primary's, where every write is sent): a Redis wipe forgets none, and a retry
// reaches them from any instance. A 5xx, 429, 408 or 425 is not kept, so the client can retry it.
//
// Two parts. A wrap around the whole app reads the key and body and stores exactly what the client got. The key
// is settled in `beforeHandle`, after everything a new request meets first (the rate limits, the token and its
// session, the route's level of access, the input's validation): a taken key's replay, 409 or 422 costs a caller
// what a new request would and is refused what a new request would be, and a new key is claimed only there, so a
// request refused before (401, 403, 422) never touches the table nor waits for its write lock. Keys are scoped
// per caller (callerScope): its user, or its client IP when anonymous, and the account's current admin rights.
import { and, eq, sql } from "drizzle-orm";
import { Elysia } from "elysia";
import type { Role } from "../cluster/role.ts";
import type { Database } from "../db/client.ts";
import { idempotencyKeys } from "../db/schema/index.ts";
import { bodyDeadline, readLimited } from "./json-body.ts";
import { jsonShapeProblem } from "./json-depth.ts";
import { q } from "../db/tx.ts";
import { outsideTurn } from "../db/write-turn.ts";
import type { Logger } from "../observability/logger.ts";
import { AppError, conflict, unprocessable } from "./errors.ts";
import { pathnameOf } from "../observability/metrics.ts";
import type { Auth } from "./auth.ts";
import { clientCallerKey } from "./rate-limits.ts";

const KEPT_MS = 24 * 3_600_000;
/** A claim older than this whose request never finished (its process died) may be taken again. */
const CLAIM_MS = 60_000;
const PRUNE_EVERY_MS = 60_000;
const PRUNE_BATCH = 500;
const KEY_RE = /^[\x20-\x7e]{1,255}$/;
/** The key's rule as a JSON Schema pattern (the OpenAPI document's Idempotency-Key parameter). */
export const IDEMPOTENCY_KEY_PATTERN = KEY_RE.source;

/** True for the methods an Idempotency-Key applies to. */
export const idempotencyApplies = (method: string) => method === "POST" || method === "PATCH";
/**
 * Not replayed: they belong to the first answer's moment, not to its result, or (CORS) to the first request's
 * Origin: the replay gets the retry's own (the header policy decorates it as any answer).
 */
const NOT_KEPT = new Set([
  "x-request-id", "date", "ratelimit", "ratelimit-policy", "retry-after", "content-length",
  "access-control-allow-origin", "access-control-expose-headers", "vary",
]);

export interface IdempotencyOptions {
  database: Database;
  role: Role;
  bodyLimit: number;
  logger: Logger;
  /** The scope of the caller's keys (callerScope). */
  scope: (request: Request) => string | Promise<string>;
  /** Paths that run again on every request whatever its key (nothing of theirs is kept or replayed). */
  exempt?: ReadonlySet<string>;
}

/**
 * Statuses that are not the request's result but a "not now" (rate limited, timed out, too early, a server
 * failure) or a refusal of its caller (401, 403: its rights decided again just before the write, auth.ts
 * readmit, after the key was claimed): not kept, so the client's retry runs, and a refused request leaves no row.
 */
const notKept = (status: number) => status >= 500 || status === 429 || status === 408 || status === 425 || status === 401 || status === 403;

const hex = (data: string) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/**
 * The body as text (read from a clone), or null when it cannot be read as the app reads it (over `limit`, late, cut
 * off): the app meets the same reading the body and answers its own 413, 408 or 400.
 */
async function bodyText(request: Request, limit: number): Promise<string | null> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) return null;
  if (!request.body) return "";
  try {
    // The clone's read and the app's of the request share one deadline: a late body is waited for once.
    return new TextDecoder().decode(await readLimited(request.clone(), limit, bodyDeadline(request, limit)));
  } catch (err) {
    if (err instanceof AppError) return null;
    throw err;
  }
}

/** Sorted keys, no whitespace: two spellings of one JSON value get one text. */
function canonical(value: unknown): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical((value as Record<string, unknown>)[k])).join(",") + "}";
}

/**
 * What identifies a body: its JSON value (so reordered keys or other whitespace are the same request), or its
 * text when it is not JSON the app would accept (the app then refuses it, and the text is as good as any).
 */
export function bodyFingerprintText(body: string): string {
  if (body === "") return body;
  const bytes = new TextEncoder().encode(body);
  if (jsonShapeProblem(bytes) !== null) return body;
  try {
    return canonical(JSON.parse(body));
  } catch {
    return body;
  }
}

type Row = typeof idempotencyKeys.$inferSelect;

/**
 * Whose keys a request's key is among: its user when its token's signature holds (a retry after logging in again,
 * with a new session, is still the same client's retry; a revoked session's token never reaches a replay, which
 * comes after the session check), else its client IP (as the write limit keys anonymous callers, clientCallerKey), so
 * that no anonymous caller can replay, or take first, another's key. For a signed-in caller, also whether the account
 * is an administrator now (its rights are the account's, auth.ts): once they change, the answers given with the
 * others are out of reach, and a retry runs as a new request, with the rights the caller has then.
 */
export async function callerScope(auth: Auth, request: Request, clientIpHeader: string | undefined): Promise<string> {
  const authorization = request.headers.get("authorization");
  const token = auth.tokenPrincipal(authorization);
  if (token === null) return clientCallerKey(request, clientIpHeader);
  const caller = `user:${token.userId}`;
  return (await auth.principal(authorization))?.isAdmin === true ? caller + ":admin" : caller;
}

export function idempotencyPlugin(o: IdempotencyOptions) {
  const { db } = o.database;
  let prunedAt = 0;

  const prune = (now: number) => {
    if (now - prunedAt < PRUNE_EVERY_MS) return;
    prunedAt = now;
    const batch = sql`(select rowid from ${idempotencyKeys} where ${idempotencyKeys.expiresAt} < ${now} limit ${PRUNE_BATCH})`;
    void outsideTurn(() =>
      o.database.write(function* (tx) {
        yield* q(tx.delete(idempotencyKeys).where(sql`rowid in ${batch}`).run());
      }),
    ).catch((err) => o.logger.warn("idempotency keys: pruning failed", { error: (err as Error).message }));
  };

  // The key's writes are bookkeeping, not the request's write: their commits keep the request's write-lane turn
  // (write-turn.ts), which the route's own write gives back.

  /** Takes the key for this request: true when it is ours to run (new, expired or abandoned). */
  const claim = (scope: string, key: string, fingerprint: string, now: number) =>
    outsideTurn(() => o.database.write(function* (tx) {
      const fresh = { scope, key, fingerprint, state: "running" as const, lockedUntil: now + CLAIM_MS, expiresAt: now + KEPT_MS };
      const inserted = yield* q(tx.insert(idempotencyKeys).values(fresh).onConflictDoNothing().returning({ key: idempotencyKeys.key }).all());
      if (inserted.length > 0) return true;
      const where = and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key));
      const retaken = yield* q(
        tx
          .update(idempotencyKeys)
          .set({ ...fresh, status: null, headers: null, body: null })
          .where(
            and(
              where,
              sql`(${idempotencyKeys.expiresAt} < ${now} or (${idempotencyKeys.state} = 'running' and ${idempotencyKeys.lockedUntil} < ${now}))`,
            ),
          )
          .returning({ key: idempotencyKeys.key })
          .all(),
      );
      return retaken.length > 0;
    }));

  const finish = (scope: string, key: string, response: { status: number; headers: [string, string][]; body: string } | null) =>
    outsideTurn(() => o.database.write(function* (tx) {
      const where = and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key), eq(idempotencyKeys.state, "running"));
      if (response === null) yield* q(tx.delete(idempotencyKeys).where(where).run());
      else yield* q(tx.update(idempotencyKeys).set({ state: "done", ...response }).where(where).run());
    }));

  // Thrown from beforeHandle, so the one onError writes them as it writes every error.
  const keyRefused = (detail: string) => unprocessable([{ field: "Idempotency-Key", message: detail }], detail);
  const running = () => conflict("A request with this Idempotency-Key is being handled; retry shortly", { "retry-after": "1" });

  /** The kept row of a key, if any. */
  const rowOf = async (scope: string, key: string) =>
    ((await db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key)))) as Row[])[0];

  /** True while a row holds its key: kept and not expired, or running and not abandoned. */
  const holds = (row: Row, now: number) => row.expiresAt >= now && !(row.state === "running" && row.lockedUntil < now);

  /** What a request whose key is taken gets: a replay, or thrown (409 while it runs, 422 for another request). */
  const answerTaken = (row: Row | undefined, fingerprint: string): Response => {
    if (row === undefined) throw running();
    if (row.fingerprint !== fingerprint) throw keyRefused("this Idempotency-Key was used with another request");
    if (row.state !== "done") throw running();
    // Filtered again: rows kept before a header joined NOT_KEPT.
    const headers = new Headers((row.headers ?? []).filter(([k]) => !NOT_KEPT.has(k)));
    headers.set("idempotent-replayed", "true");
    return new Response(row.body, { status: row.status ?? 200, headers });
  };

  /** A keyed request the wrap let through: its key, and whether beforeHandle claimed it for this request. */
  interface Keyed {
    scope: string;
    key: string;
    fingerprint: string;
    claimed: boolean;
  }
  const keyed = new WeakMap<Request, Keyed | (() => never)>();

  /**
   * In beforeHandle, after what a new request meets first (see the file's header), so a 401, 403 or 422 leaves
   * the table alone and never waits for its write lock. A kept answer is read without a write (a replay answers
   * while another process holds the lock); a key nobody holds is claimed, and a claim that meets the lock held
   * past the write's wait throws the same 503 as any write (onError, problemOf).
   */
  function settle(request: Request): Response | undefined | Promise<Response | undefined> {
    const entry = keyed.get(request);
    // No key (or no key of ours): nothing to wait for.
    if (entry === undefined) return undefined;
    if (typeof entry === "function") return entry();
    return settleKeyed(entry);
  }

  async function settleKeyed(entry: Keyed): Promise<Response | undefined> {
    const now = Date.now();
    const row = await rowOf(entry.scope, entry.key);
    if (row !== undefined && holds(row, now)) return answerTaken(row, entry.fingerprint);
    prune(now);
    if (await claim(entry.scope, entry.key, entry.fingerprint, now)) {
      entry.claimed = true;
      return undefined;
    }
    return answerTaken(await rowOf(entry.scope, entry.key), entry.fingerprint);
  }

  async function handle(request: Request, next: (r: Request) => Promise<Response> | Response): Promise<Response> {
    const key = request.headers.get("idempotency-key");
    if (key === null || !idempotencyApplies(request.method)) return next(request);
    if (!KEY_RE.test(key)) {
      keyed.set(request, () => {
        throw keyRefused("must be 1 to 255 printable characters");
      });
      return next(request);
    }
    // A replica forwards writes to the primary, which keeps the keys.
    if (!o.role.isPrimary()) return next(request);
    const url = new URL(request.url);
    if (o.exempt?.has(pathnameOf(request.url))) return next(request);
    const body = await bodyText(request, o.bodyLimit);
    if (body === null) return next(request);
    const fingerprint = hex(`${request.method} ${url.pathname}${url.search}\n${bodyFingerprintText(body)}`);
    const scope = hex(`scope\n${await o.scope(request)}`).slice(0, 32);
    const entry: Keyed = { scope, key, fingerprint, claimed: false };
    keyed.set(request, entry);
    let response: Response;
    try {
      response = await next(request);
    } catch (err) {
      if (entry.claimed) await finish(scope, key, null).catch(() => undefined);
      throw err;
    }
    // Refused before beforeHandle (429, 401, 403, 400, 422, 404), or answered there for a taken key: not ours.
    if (!entry.claimed) return response;
    const text = await response.text();
    const kept: [string, string][] = [];
    response.headers.forEach((v, k) => {
      if (!NOT_KEPT.has(k)) kept.push([k, v]);
    });
    try {
      await finish(scope, key, notKept(response.status) ? null : { status: response.status, headers: kept, body: text });
    } catch (err) {
      // The write happened; only the key is not kept: a retry would run it again, so say so in the logs.
      o.logger.warn("idempotency key not stored", { error: (err as Error).message });
    }
    return new Response(text, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  const idempotencyKeyCheck = ({ request }: { request: Request }) => settle(request);
  settleHooks.add(idempotencyKeyCheck);
  return new Elysia({ name: "idempotency" })
    .wrap(((next: (r: Request) => Promise<Response> | Response) => (request: Request) => handle(request, next)) as never)
    .onBeforeHandle({ as: "global" }, idempotencyKeyCheck);
}

/** The plugins' beforeHandle hooks (dropIdempotencyWhereMoot finds them on the routes). */
const settleHooks = new WeakSet<object>();

interface RouteHooks {
  method: string;
  hooks?: { beforeHandle?: { fn: unknown }[] };
}

/**
 * Takes the key's beforeHandle off the routes whose method never carries a key (GET, DELETE, ...): Elysia awaits
 * a beforeHandle it cannot tell is synchronous, which would make every such route's handler async for nothing.
 * Call it on the finished app's routes, before they are compiled (compileRoutes, or the first request).
 */
export function dropIdempotencyWhereMoot(routes: readonly RouteHooks[]): void {
  for (const route of routes) {
    const hooks = route.hooks?.beforeHandle;
    // An `all` route takes every method, POST and PATCH included.
    if (!hooks || idempotencyApplies(route.method) || route.method === "ALL") continue;
    const kept = hooks.filter((h) => !settleHooks.has(h.fn as object));
    if (kept.length === hooks.length) continue;
    if (kept.length > 0) route.hooks!.beforeHandle = kept;
    else delete route.hooks!.beforeHandle;
  }
}
