// Accounts: registration (with its background side effects), reads through the cache, updates, deletion.
import type { Static, TSchema } from "@sinclair/typebox";
import type { Cache, CacheResult } from "../../platform/cache/port.ts";
import type { Database } from "../../platform/db/client.ts";
import type { OutboxKick } from "../../platform/jobs/relay.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import type { WorkGate } from "../../platform/http/work-gate.ts";
import { hashPassword } from "../../platform/http/passwords.ts";
import { readEntry, type CacheEntry } from "../../platform/http/cached-read.ts";
import { conflict, notFound, type AppError } from "../../platform/http/errors.ts";
import type { Auth } from "../../platform/http/auth.ts";
import { q } from "../../platform/db/tx.ts";
import { mapStep, type Step } from "../../platform/db/step.ts";
import { writeOutbox } from "../../platform/jobs/outbox.ts";
import type { UserDetail, UserPublic } from "./model.ts";
import { REGISTRATION_JOBS } from "../jobs/types.ts";
import { isUniqueViolation, toUserPublic, usersRepo } from "./repository.ts";
import { invalidateUser, userKeys } from "./keys.ts";

const duplicateEmail = (): AppError => conflict("An account with this email already exists");

/** What the account use cases need. */
export interface UsersDeps {
  database: Database;
  cache: Cache;
  logger: Logger;
  /** Bounds password hashing (beyond it: 503 at once). */
  hashing: WorkGate;
  /** Told after a write that queued jobs in the outbox. */
  outbox: OutboxKick;
  /** The auth macro of the routes, and the sessions a password change, a rights change or a deletion revokes. */
  auth: Auth;
}

/** A part of a user's detail that another feature owns: its schema there, and its value for a user that exists. */
export interface DetailPart<S extends TSchema = TSchema> {
  schema: S;
  load(userId: number): Step<Static<S>>;
}

/**
 * The parts of a user's detail besides the account. Their features stand on this one (a post needs its user),
 * so the root hands them in (userDetailParts, src/main/features.ts) and users imports neither.
 */
export interface DetailParts<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  posts: DetailPart<P>;
  preferences: DetailPart<R>;
}

/** What the detail read needs. */
export interface DetailDeps<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  database: Database;
  cache: Cache;
  detail: DetailParts<P, R>;
}

export async function register(
  deps: UsersDeps,
  input: { email: string; password: string; full_name: string },
  opts: { isAdmin?: boolean } = {},
): Promise<UserPublic> {
  const email = input.email.trim().toLowerCase();
  const passwordHash = await deps.hashing.run(() => hashPassword(input.password));
  let user;
  try {
    user = await deps.database.write(function* (tx) {
      if (yield* q(usersRepo.findByEmail(tx, email))) throw duplicateEmail();
      const row = yield* q(usersRepo.insert(tx, { email, passwordHash, fullName: input.full_name, isAdmin: opts.isAdmin }));
      yield* writeOutbox(
        tx,
        REGISTRATION_JOBS.map((type) => ({
          type,
          payload: { user_id: row.id, email: row.email, full_name: row.fullName },
          idempotencyKey: `${type}:user:${row.id}:${row.createdAt}`,
        })),
      );
      return row;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateEmail();
    throw err;
  }
  deps.outbox.kick();
  // An earlier read of this id may have cached "no such user".
  await invalidateUser(deps.cache, user.id);
  deps.logger.info("user registered", { user_id: user.id });
  return toUserPublic(user);
}

async function loadDetail<P extends TSchema, R extends TSchema>(deps: DetailDeps<P, R>, id: number): Promise<UserDetail<P, R> | null> {
  const user = await usersRepo.findById(deps.database.db, id);
  if (!user) return null;
  const [posts, preferences] = await Promise.all([deps.detail.posts.load(id), deps.detail.preferences.load(id)]);
  const detail: UserDetail = { user: toUserPublic(user), posts, preferences };
  // TypeScript cannot relate the awaited parts to TypeBox's Static of an object whose part schemas are still type
  // parameters; each part is its own schema's Static by DetailPart.load's type, which is what UserDetail<P, R> says.
  return detail as unknown as UserDetail<P, R>;
}

/** The cache entry of a user's detail. A missing user is cached as null (a miss marker). */
export function detailEntry<P extends TSchema, R extends TSchema>(deps: DetailDeps<P, R>, id: number): CacheEntry<UserDetail<P, R>> {
  return { key: userKeys.detail(id), tags: [userKeys.tag(id)], load: () => loadDetail(deps, id) };
}

export const userNotFound = (id: number) => notFound(`User ${id} not found`);

/** The user detail, through the cache. */
export async function getDetail<P extends TSchema, R extends TSchema>(deps: DetailDeps<P, R>, id: number): Promise<CacheResult<UserDetail<P, R>>> {
  const result = await readEntry(deps.cache, detailEntry(deps, id));
  if (result.value === null) throw userNotFound(id);
  return result as CacheResult<UserDetail<P, R>>;
}

export type UsersPage = { items: UserPublic[]; page: number; limit: number; total: number };

/** One page of all users, straight from the database (synchronous on bun:sqlite). */
export function list(deps: Pick<UsersDeps, "database">, page: number, limit: number): Step<UsersPage> {
  return mapStep(usersRepo.page(deps.database.db, page, limit), ({ items, total }) => ({ items, page, limit, total }));
}

/** Updates an account; the route allows its owner or an administrator (auth level "owner-or-admin"). */
export async function update(deps: UsersDeps, id: number, input: { email?: string; password?: string; full_name?: string }): Promise<UserPublic> {
  const patch: { email?: string; passwordHash?: string; fullName?: string } = {};
  if (input.email !== undefined) patch.email = input.email.trim().toLowerCase();
  if (input.full_name !== undefined) patch.fullName = input.full_name;
  if (input.password !== undefined) {
    const password = input.password;
    patch.passwordHash = await deps.hashing.run(() => hashPassword(password));
  }
  let row;
  try {
    row = await deps.database.write(function* (tx) {
      if (patch.email !== undefined) {
        const other = yield* q(usersRepo.findByEmail(tx, patch.email));
        if (other && other.id !== id) throw duplicateEmail();
      }
      const updated = yield* q(usersRepo.update(tx, id, patch));
      // A new password ends every session of the account, the caller's own included, in the same transaction: a
      // second one after it could meet the write lock and fail with the password already changed.
      if (updated && patch.passwordHash !== undefined) yield* q(deps.auth.sessions.deleteAllRows(tx, id));
      return updated;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateEmail();
    throw err;
  }
  if (!row) throw notFound(`User ${id} not found`);
  await invalidateUser(deps.cache, id);
  if (patch.passwordHash !== undefined) await deps.auth.sessions.forgetAll(id);
  return toUserPublic(row);
}

/** Deletes an account; the route allows its owner or an administrator (auth level "owner-or-admin"). */
export async function remove(deps: UsersDeps, id: number): Promise<void> {
  const deleted = await deps.database.write((tx) => q(usersRepo.delete(tx, id)));
  if (!deleted) throw notFound(`User ${id} not found`);
  await invalidateUser(deps.cache, id);
  // The rows went with the account (ON DELETE CASCADE); the cached states must go everywhere too.
  await deps.auth.sessions.revokeAll(id, { deleteRows: false });
}

/**
 * Grants or takes admin rights. A demotion takes them from every token of the account on every instance at
 * once (tokens keep working as the user's own); the service has no route for it.
 */
export async function setAdmin(deps: UsersDeps, id: number, isAdmin: boolean): Promise<void> {
  const row = await deps.database.write((tx) => q(usersRepo.update(tx, id, { isAdmin })));
  if (!row) throw notFound(`User ${id} not found`);
  await invalidateUser(deps.cache, id);
  await deps.auth.sessions.revokeAll(id, { deleteRows: false });
}

/**
 * Creates the admin account named by ADMIN_EMAIL/ADMIN_PASSWORD. An existing account of that email becomes an
 * admin only if its password is ADMIN_PASSWORD: anyone may register an email first, and must not get admin
 * rights with a password of their own by waiting for a start.
 */
export async function ensureAdmin(deps: UsersDeps, email: string, password: string): Promise<void> {
  const normalized = email.trim().toLowerCase();
  const existing = await usersRepo.findByEmail(deps.database.db, normalized);
  if (existing) {
    if (existing.isAdmin) return;
    if (await deps.hashing.run(() => Bun.password.verify(password, existing.passwordHash))) {
      await setAdmin(deps, existing.id, true);
      deps.logger.info("admin rights granted to the existing account of ADMIN_EMAIL", { user_id: existing.id });
    } else {
      deps.logger.error(
        "ADMIN_EMAIL names an existing account whose password is not ADMIN_PASSWORD: it was not made an administrator (if it should be: bun run users -- promote <email>)",
        { user_id: existing.id },
      );
    }
    return;
  }
  try {
    await register(deps, { email: normalized, password, full_name: "Administrator" }, { isAdmin: true });
    deps.logger.info("admin account created", { email: normalized });
  } catch (err) {
    // Another instance created it at the same moment.
    if (!(err instanceof Error && "status" in err && (err as AppError).status === 409)) throw err;
  }
}
