// A cached read, declared once in its feature: path, auth level, id rule (the params schema), query schema,
// cache entry (key, tags, loader), response schema and OpenAPI detail. mountCachedRead() makes the Elysia route
// from it (validation, 401/403/404 problems and the OpenAPI document as for any route), and fast-read.ts makes
// the Bun `routes` entry that answers the common case in front of Elysia from the same declaration.
import type { StaticDecode, TSchema } from "@sinclair/typebox";
import type { Cache, CacheResult } from "../cache/port.ts";
import type { Principal } from "./auth.ts";
import type { AppError } from "./errors.ts";
import { problems, responseHeaders } from "./models.ts";

export type AuthLevel = "user" | "admin";

/** The cache entry one request reads, and how to load it when it is not cached. */
export interface CacheEntry<T = unknown> {
  key: string;
  tags: readonly string[];
  /** False: this instance's L1 only (keys a caller can multiply at will); see CacheSetOptions.shared. */
  shared?: boolean;
  /** The value, or null when there is nothing (cached as such, answered with the declaration's `missing`). */
  load(): Promise<T | null>;
}

type Decoded<S> = S extends TSchema ? StaticDecode<S> : Record<string, never>;

/** What a read is asked: the decoded params and query (defaults applied) and the caller. */
export interface CachedReadRequest<P = unknown, Q = unknown> {
  params: P;
  query: Q;
  principal: Principal;
}

export interface RouteDetail {
  operationId: string;
  summary: string;
  description?: string;
  /** Per problem status, what it means on this route (the 200 with its x-cache header is added). */
  responses?: Record<number, { description: string }>;
}

export interface CachedReadSpec<P extends TSchema | undefined, Q extends TSchema | undefined> {
  /** The path under the feature's prefix, in Elysia's syntax (`/:id/posts`). */
  path: string;
  auth: AuthLevel;
  /** The id rule: an object of DecimalInt properties (models.ts) when the read has path parameters. */
  params?: P;
  /** The query's schema: an object of DecimalInt properties, additionalProperties false. */
  query?: Q;
  /** The 200 body's schema (a model the feature registers with `.model()`). */
  response: TSchema;
  /** The problem statuses the route documents besides the platform's own. */
  problems: readonly number[];
  detail: RouteDetail;
  entry(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): CacheEntry;
  /** The error answered when the entry holds null (nothing there). */
  missing(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): AppError;
}

/** A declaration with its types erased, as the platform handles it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CachedRead = CachedReadSpec<any, any>;

/** Types a declaration: `entry` and `missing` see the decoded params and query. */
export function cachedRead<P extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined>(
  spec: CachedReadSpec<P, Q>,
): CachedRead {
  return spec;
}

/** Reads the declared entry through the cache; the declaration's error when it holds null. */
export async function readThrough(cache: Cache, read: CachedRead, request: CachedReadRequest): Promise<CacheResult<unknown>> {
  const e = read.entry(request);
  const result = await cache.getOrSet(e.key, () => e.load(), { tags: e.tags, shared: e.shared });
  if (result.value === null) throw read.missing(request);
  return result;
}

/** A cached read answered with the JSON kept in the cache entry: a hit does no serialization. */
export function cachedJson(result: CacheResult<unknown>): Response {
  return new Response(result.json, { headers: { "content-type": "application/json", "x-cache": result.source } });
}

/** The 200 of a cached read in the OpenAPI document: its x-cache header. */
const CACHED_200 = { description: "OK", headers: responseHeaders("x-cache") };

/** Elysia's route hooks for a declaration: auth macro, params, query, responses, detail. */
export function routeHooks(read: CachedRead): Record<string, unknown> {
  const hooks: Record<string, unknown> = { auth: read.auth };
  if (read.params !== undefined) hooks.params = read.params;
  if (read.query !== undefined) hooks.query = read.query;
  hooks.response = { 200: read.response, ...problems(...read.problems) };
  const { responses, ...rest } = read.detail;
  hooks.detail = { ...rest, responses: { 200: CACHED_200, ...responses } };
  return hooks;
}

/** The declarations behind the Elysia handlers mountCachedRead made: the fast routes are found through them. */
const declared = new WeakMap<object, { read: CachedRead; cache: Cache }>();

/** The declaration (and its cache) of a route handler made by mountCachedRead, if it is one. */
export function cachedReadOf(handler: unknown): { read: CachedRead; cache: Cache } | undefined {
  return typeof handler === "function" ? declared.get(handler) : undefined;
}

interface RouteAdder {
  get(path: string, handler: (ctx: never) => unknown, hooks: never): unknown;
}

/**
 * Adds the declared read to an Elysia instance as a GET route, in place (Elysia's methods add to the instance
 * they are called on), so a feature keeps its routes in the order it lists them. The instance must use the
 * auth plugin (the `auth` macro).
 */
export function mountCachedRead<A extends object>(app: A, read: CachedRead, cache: Cache): A {
  const handler = async (ctx: { params?: unknown; query?: unknown; principal: Principal }) =>
    cachedJson(await readThrough(cache, read, { params: ctx.params ?? {}, query: ctx.query ?? {}, principal: ctx.principal }));
  declared.set(handler, { read, cache });
  (app as unknown as RouteAdder).get(read.path, handler as (ctx: never) => unknown, routeHooks(read) as never);
  return app;
}
