// A cached read, declared once in its feature: path, auth level, id rule (the params schema), query schema,
// cache entry (key, tags, loader), response schema and OpenAPI detail. mountCachedRead() makes the Elysia route
// from it (validation, 401/403/404 problems and the OpenAPI document as for any route), and fast-read.ts makes
// the Bun `routes` entry that answers the common case in front of Elysia from the same declaration. A read whose
// value should not be cached at all (uncachedRead: a loader instead of a cache entry) is declared and served
// the same way, and answers without an x-cache header.
import type { StaticDecode, TSchema } from "@sinclair/typebox";
import type { Cache, CacheResult, CacheSource } from "../cache/port.ts";
import type { Principal } from "./auth.ts";
import type { AppError } from "./errors.ts";
import type { AuthLevel } from "./access.ts";
import { problems, responseHeaders } from "./models.ts";
import { JSON_CONTENT_TYPE } from "./headers.ts";

export type { AuthLevel };

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

interface ReadSpec<P extends TSchema | undefined, Q extends TSchema | undefined> {
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
}

export interface CachedReadSpec<P extends TSchema | undefined, Q extends TSchema | undefined> extends ReadSpec<P, Q> {
  entry(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): CacheEntry;
  /** The error answered when the value is null (nothing there). */
  missing(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): AppError;
  load?: never;
}

export interface UncachedReadSpec<P extends TSchema | undefined, Q extends TSchema | undefined> extends ReadSpec<P, Q> {
  /** The value, read every time (a value, or a promise of one on a driver whose calls are promises); null when nothing is there. */
  load(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): unknown;
  /** The error answered when the value is null; left out by a read whose `load` never gives null (a page). */
  missing?(request: CachedReadRequest<Decoded<P>, Decoded<Q>>): AppError;
  entry?: never;
}

/** A declaration with its types erased, as the platform handles it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CachedRead = CachedReadSpec<any, any> | UncachedReadSpec<any, any>;

/** Types a declaration: `entry` and `missing` see the decoded params and query. */
export function cachedRead<P extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined>(
  spec: CachedReadSpec<P, Q>,
): CachedRead {
  return spec;
}

/**
 * Types a declaration of a read that is never cached: `load` runs for every request. For values every write of
 * a kind would have to invalidate (the admin's list of all users), which nothing else reads.
 */
export function uncachedRead<P extends TSchema | undefined = undefined, Q extends TSchema | undefined = undefined>(
  spec: UncachedReadSpec<P, Q>,
): CachedRead {
  return spec;
}

/** What a declared read found: the value (null: nothing there), its JSON, and where it came from (none when uncached). */
export interface ReadResult {
  value: unknown;
  json: string;
  source?: CacheSource;
}

const uncachedResult = (value: unknown): ReadResult => ({ value, json: JSON.stringify(value) });

/**
 * The declared value: through the cache (a promise), or from an uncached read's loader, synchronously when the
 * loader's database answers synchronously (bun:sqlite).
 */
export function readValue(cache: Cache, read: CachedRead, request: CachedReadRequest): ReadResult | Promise<ReadResult> {
  if (read.load !== undefined) {
    const value = read.load(request);
    return value instanceof Promise ? value.then(uncachedResult) : uncachedResult(value);
  }
  return readEntry(cache, read.entry(request));
}

/** A cache entry read through the cache: the one way, for the declared reads and the services' own reads alike. */
export function readEntry<T>(cache: Cache, e: CacheEntry<T>): Promise<CacheResult<T | null>> {
  return cache.getOrSet(e.key, () => e.load(), { tags: e.tags, shared: e.shared });
}

/** The declared value; the declaration's error when it is null. */
export async function readThrough(cache: Cache, read: CachedRead, request: CachedReadRequest): Promise<ReadResult> {
  const result = await readValue(cache, read, request);
  if (result.value === null) {
    if (read.missing === undefined) throw new Error("A declared read without `missing` loaded null");
    throw read.missing(request);
  }
  return result;
}

/** A read answered with its JSON (for a cache hit, the JSON kept in the entry: no serialization). */
export function cachedJson(result: ReadResult): Response {
  const headers: Record<string, string> = { "content-type": JSON_CONTENT_TYPE };
  if (result.source !== undefined) headers["x-cache"] = result.source;
  return new Response(result.json, { headers });
}

/** The 200 of a cached read in the OpenAPI document: its x-cache header (an uncached read has none). */
const CACHED_200 = { description: "OK", headers: responseHeaders("x-cache") };

/** Elysia's route hooks for a declaration: auth macro, params, query, responses, detail. */
export function routeHooks(read: CachedRead): Record<string, unknown> {
  const hooks: Record<string, unknown> = { auth: read.auth };
  if (read.params !== undefined) hooks.params = read.params;
  if (read.query !== undefined) hooks.query = read.query;
  hooks.response = { 200: read.response, ...problems(...read.problems) };
  const { responses, ...rest } = read.detail;
  hooks.detail = { ...rest, responses: read.load === undefined ? { 200: CACHED_200, ...responses } : { ...responses } };
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
