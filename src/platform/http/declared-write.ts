// A write, declared once in its feature: method, path, auth level, id rule (the params schema), body schema,
// success status and response schema, problems, OpenAPI detail, and the handler that calls the service.
// mountWrite() makes the Elysia route from it (validation, 401/403/422 problems and the OpenAPI document as for
// any route), and fast-write.ts makes the Bun `routes` entry that answers the common case in front of Elysia from
// the same declaration.
import type { StaticDecode, TSchema } from "@sinclair/typebox";
import type { Principal } from "./auth.ts";
import type { AuthLevel, RouteDetail } from "./cached-read.ts";
import { problems } from "./models.ts";

/** What a write is given: the decoded params, the validated body and the caller. */
export interface WriteRequest<P = unknown, B = unknown> {
  params: P;
  body: B;
  principal: Principal;
}

export interface DeclaredWriteSpec<P extends TSchema, B extends TSchema> {
  method: "POST" | "PATCH";
  /** The path under the feature's prefix, in Elysia's syntax (`/:id/posts`). */
  path: string;
  auth: AuthLevel;
  /** The id rule: an object of DecimalInt properties (models.ts). */
  params: P;
  /** The body's schema (JSON, validated as it is: the app neither coerces nor cleans bodies). */
  body: B;
  /** The success status and its body's schema. */
  status: 200 | 201;
  response: TSchema;
  /** The problem statuses the route documents besides the platform's own. */
  problems: readonly number[];
  detail: RouteDetail;
  /** Runs the write (the service call); its result is the success body, an AppError its problem. */
  handle(request: WriteRequest<StaticDecode<P>, StaticDecode<B>>): Promise<unknown>;
}

/** A declaration with its types erased, as the platform handles it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DeclaredWrite = DeclaredWriteSpec<any, any>;

/** Types a declaration: `handle` sees the decoded params and the body's type. */
export function declaredWrite<P extends TSchema, B extends TSchema>(spec: DeclaredWriteSpec<P, B>): DeclaredWrite {
  return spec;
}

/** Elysia's route hooks for a declaration: auth macro, params, body, responses, detail. */
export function writeHooks(write: DeclaredWrite): Record<string, unknown> {
  return {
    auth: write.auth,
    params: write.params,
    body: write.body,
    response: { [write.status]: write.response, ...problems(...write.problems) },
    detail: write.detail,
  };
}

/** The declarations behind the Elysia handlers mountWrite made: the fast routes are found through them. */
const declared = new WeakMap<object, DeclaredWrite>();

/** The declaration of a route handler made by mountWrite, if it is one. */
export function declaredWriteOf(handler: unknown): DeclaredWrite | undefined {
  return typeof handler === "function" ? declared.get(handler) : undefined;
}

type RouteAdder = Record<"post" | "patch", (path: string, handler: (ctx: never) => unknown, hooks: never) => unknown>;

/**
 * Adds the declared write to an Elysia instance, in place (Elysia's methods add to the instance they are called
 * on), so a feature keeps its routes in the order it lists them. The instance must use the auth plugin.
 */
export function mountWrite<A extends object>(app: A, write: DeclaredWrite): A {
  const status = write.status;
  const handler = (ctx: { params: unknown; body: unknown; principal: Principal; set: { status?: number | string } }) => {
    if (status !== 200) ctx.set.status = status;
    return write.handle({ params: ctx.params, body: ctx.body, principal: ctx.principal });
  };
  declared.set(handler, write);
  const method = write.method === "POST" ? "post" : "patch";
  (app as unknown as RouteAdder)[method](write.path, handler as (ctx: never) => unknown, writeHooks(write) as never);
  return app;
}
