import type { TSchema } from "@sinclair/typebox";
import { Elysia, t } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { cachedRead, mountCachedRead, uncachedRead } from "../../platform/http/cached-read.ts";
import { declaredWrite, mountWrite } from "../../platform/http/declared-write.ts";
import { IdParams, PageQuery, problems } from "../../platform/http/models.ts";
import { RegisterBody, UpdateUserBody, UserPage, UserPublic, userDetailSchema } from "./model.ts";
import type { Role } from "../../platform/cluster/role.ts";
import type { Mailer } from "../../platform/mail/port.ts";
import { mountedCachedReads, type Feature, type StartupChore } from "../../platform/feature.ts";
import * as users from "./service.ts";
import type { DetailDeps, DetailParts, UsersDeps } from "./service.ts";
import { registrationJobs } from "./jobs.ts";
import { warmCache, type WarmSettings } from "./warm.ts";

/** The caller's own detail: the same cache entry as GET /users/{id} of their id. */
export const myDetailRead = (deps: DetailDeps, UserDetail: TSchema) =>
  cachedRead({
    path: "/me",
    auth: "user",
    response: UserDetail,
    problems: [401, 404],
    detail: {
      operationId: "getMyDetail",
      summary: "The caller's own detail",
      responses: { 404: { description: "The caller's account no longer exists" } },
    },
    entry: ({ principal }) => users.detailEntry(deps, principal.userId),
    missing: ({ principal }) => users.userNotFound(principal.userId),
  });

export const userDetailRead = (deps: DetailDeps, UserDetail: TSchema) =>
  cachedRead({
    path: "/:id",
    auth: "user",
    params: IdParams,
    response: UserDetail,
    problems: [401, 404],
    detail: {
      operationId: "getUserDetail",
      summary: "A user with their newest 10 posts and their preferences",
      responses: { 404: { description: "No user has this id" } },
    },
    entry: ({ params }) => users.detailEntry(deps, params.id),
    missing: ({ params }) => users.userNotFound(params.id),
  });

/**
 * All users, a page at a time, for administrators: read from the database every time. Caching the pages would
 * make every account write (registration, profile, deletion, rights) drop every page on every instance, for a
 * read nothing else shares.
 */
export const userListRead = (deps: Pick<UsersDeps, "database">) =>
  uncachedRead({
    path: "",
    auth: "admin",
    query: PageQuery,
    response: UserPage,
    problems: [401, 403],
    detail: { operationId: "listUsers", summary: "All users, a page at a time (admin)" },
    // A page past the end is an empty page, never null: no `missing`.
    load: ({ query }) => users.list(deps, query.page ?? 1, query.limit ?? 10),
  });

export const updateUserWrite = (deps: UsersDeps) =>
  declaredWrite({
    method: "PATCH",
    path: "/:id",
    auth: "owner-or-admin",
    params: IdParams,
    body: UpdateUserBody,
    status: 200,
    response: UserPublic,
    problems: [401, 403, 404, 409],
    detail: {
      operationId: "updateUser",
      summary: "Update a user (owner or admin)",
      responses: {
        403: { description: "Neither the user nor an administrator" },
        404: { description: "No user has this id" },
        409: { description: "Another account has this email" },
      },
    },
    handle: ({ params, body }) => users.update(deps, params.id, body),
  });

export function usersModule<P extends TSchema, R extends TSchema>(deps: UsersDeps & DetailDeps<P, R>) {
  // One schema for both detail reads: `.model()` names the object, and the document refers to it by that name.
  const UserDetail = userDetailSchema(deps.detail);
  const app = new Elysia({ prefix: "/users", tags: ["users"] })
    .use(authPlugin(deps.auth))
    .model({ UserPublic, UserDetail, UserPage })
    .post("", async ({ body, set }) => {
      set.status = 201;
      return users.register(deps, body);
    }, {
      body: RegisterBody,
      response: { 201: UserPublic, ...problems(409) },
      detail: {
        operationId: "registerUser",
        summary: "Register an account",
        description: "Queues the welcome email, analytics and audit jobs.",
        responses: { 409: { description: "An account already has this email" } },
      },
    });
  mountCachedRead(app, myDetailRead(deps, UserDetail), deps.cache);
  mountCachedRead(app, userDetailRead(deps, UserDetail), deps.cache);
  mountCachedRead(app, userListRead(deps), deps.cache);
  mountWrite(app, updateUserWrite(deps));
  return app
    .delete("/:id", async ({ params, set }) => {
      await users.remove(deps, params.id);
      set.status = 204;
    }, {
      auth: "owner-or-admin",
      params: IdParams,
      response: { 204: t.Void(), ...problems(401, 403, 404) },
      detail: {
        operationId: "deleteUser",
        summary: "Delete a user (owner or admin)",
        responses: { 403: { description: "Neither the user nor an administrator" }, 404: { description: "No user has this id" } },
      },
    });
}

export interface UsersSlice<P extends TSchema = TSchema, R extends TSchema = TSchema> extends UsersDeps {
  /** The newest posts and the preferences in a user's detail, from the features that own them. */
  detail: DetailParts<P, R>;
  /** The welcome email goes through it. */
  mailer: Mailer;
  role: Pick<Role, "isPrimary">;
  /** ADMIN_EMAIL and ADMIN_PASSWORD: the account the primary creates (or makes an admin) at start. */
  admin: { email: string; password: string } | null;
  /** Warming at start: the most recently active users' details go into the cache before the instance serves. */
  config: WarmSettings;
}

/** Accounts, their cached details and their registration's jobs; at start, the admin account and a warm cache. */
export function usersFeature<P extends TSchema, R extends TSchema>(slice: UsersSlice<P, R>): Feature {
  const startup: StartupChore[] = [];
  const admin = slice.admin;
  if (admin) {
    startup.push({
      name: "ensure_admin",
      when: "built",
      run: async () => {
        if (slice.role.isPrimary()) await users.ensureAdmin(slice, admin.email, admin.password);
      },
    });
  }
  // Bounded by CACHE_WARM_TIMEOUT_MS; the instance serves (and reports ready) no later than that.
  startup.push({ name: "warm_cache", when: "serve", run: () => warmCache(slice) });
  const routes = usersModule(slice);
  return { name: "users", routes, cachedReads: mountedCachedReads(routes), jobs: registrationJobs(slice, slice.mailer), startup };
}
