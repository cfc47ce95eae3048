// SQL for users, and the rows their registration's jobs write. Rows come out in the contract's shapes. Each call
// returns its result directly on bun:sqlite and a promise on libSQL: `await` it, or `yield* q(...)` inside a
// write body.
import { desc, eq, gte, lte, sql } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, sqliteOf, type Step } from "../../platform/db/step.ts";
import { driveAsync, driveSync, q } from "../../platform/db/tx.ts";
import { analyticsEvents, auditLog, tableCounts, userIdGaps, users } from "../../platform/db/schema/index.ts";
import type { UserPublic } from "./model.ts";

export { isUniqueViolation } from "../../platform/db/errors.ts";

type UserRow = typeof users.$inferSelect;
/** Any Drizzle handle that can run queries: the database or a transaction. */
type Tx = Db;

export const toUserPublic = (u: UserRow): UserPublic => ({
  id: u.id,
  email: u.email,
  full_name: u.fullName,
  is_active: u.isActive,
  is_admin: u.isAdmin,
  created_at: u.createdAt,
  updated_at: u.updatedAt,
});

const nowIso = () => new Date().toISOString();

const p = sql.placeholder;

const userStatements = preparedFor((db) => ({
  byId: db.select().from(users).where(eq(users.id, p("id"))).limit(1).prepare(),
  byEmail: db.select().from(users).where(eq(users.email, p("email"))).limit(1).prepare(),
  exists: db.select({ id: users.id }).from(users).where(eq(users.id, p("id"))).limit(1).prepare(),
  insert: db
    .insert(users)
    .values({
      email: p("email"),
      passwordHash: p("passwordHash"),
      fullName: p("fullName"),
      isAdmin: p("isAdmin"),
      createdAt: p("now"),
      updatedAt: p("now"),
      lastActiveAt: p("now"),
    })
    .returning()
    .prepare(),
  // One statement for every combination of fields: a null parameter keeps the column as it is.
  update: db
    .update(users)
    .set({
      email: sql`coalesce(${p("email")}, ${users.email})`,
      passwordHash: sql`coalesce(${p("passwordHash")}, ${users.passwordHash})`,
      fullName: sql`coalesce(${p("fullName")}, ${users.fullName})`,
      isAdmin: sql`coalesce(${p("isAdmin")}, ${users.isAdmin})`,
      updatedAt: sql`${p("now")}`,
      lastActiveAt: sql`${p("now")}`,
    })
    .where(eq(users.id, p("id")))
    .returning()
    .prepare(),
  touch: db.update(users).set({ lastActiveAt: sql`${p("now")}` }).where(eq(users.id, p("id"))).prepare(),
  delete: db.delete(users).where(eq(users.id, p("id"))).returning({ id: users.id }).prepare(),
  pageItems: db.select().from(users).orderBy(users.id).limit(p("limit")).offset(p("offset")).prepare(),
  pageFrom: db.select().from(users).where(gte(users.id, p("from"))).orderBy(users.id).limit(p("limit")).prepare(),
  gapsUpTo: db.select({ n: sql<number>`count(*)` }).from(userIdGaps).where(lte(userIdGaps.id, p("id"))).prepare(),
  total: db.select({ n: tableCounts.n }).from(tableCounts).where(eq(tableCounts.name, "users")).prepare(),
}));

/** Rounds of the first-id search before a page falls back to skipping rows (many deletions below it). */
const PAGE_SEARCH_ROUNDS = 16;

// The read paths of the cache-missing GETs, straight from bun:sqlite (null on libSQL, which uses the statements
// above). Columns are aliased to the rows' property names; the test suite compares both drivers' rows. Posts and
// preferences keep theirs in their own repositories.
const USER_COLUMNS =
  "id, email, password_hash AS passwordHash, full_name AS fullName, is_active AS isActive, is_admin AS isAdmin, created_at AS createdAt, updated_at AS updatedAt, last_active_at AS lastActiveAt";
const PUBLIC_COLUMNS = "id, email, full_name, is_active, is_admin, created_at, updated_at";
const directReads = preparedFor((db) => {
  const c = sqliteOf(db);
  if (!c) return null;
  const total = c.prepare<{ n: number }, []>("SELECT n FROM table_counts WHERE name = 'users'");
  const gapsUpTo = c.prepare<{ n: number }, [number]>("SELECT count(*) AS n FROM user_id_gaps WHERE id <= ?");
  // The list reads public columns only: the password hash and the last activity stay on disk.
  const from = c.prepare<RawPublic, [number, number]>(`SELECT ${PUBLIC_COLUMNS} FROM users WHERE id >= ? ORDER BY id LIMIT ?`);
  const skip = c.prepare<RawPublic, [number, number]>(`SELECT ${PUBLIC_COLUMNS} FROM users ORDER BY id LIMIT ? OFFSET ?`);
  const pageReads: PageReads = {
    total: () => total.get()?.n ?? 0,
    gapsUpTo: (id) => gapsUpTo.get(id)?.n ?? 0,
    from: (x, limit) => from.all(x, limit).map(publicOf),
    skip: (limit, offset) => skip.all(limit, offset).map(publicOf),
  };
  return {
    byId: c.prepare<RawUser, [number]>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ? LIMIT 1`),
    exists: c.prepare<{ id: number }, [number]>("SELECT id FROM users WHERE id = ? LIMIT 1"),
    pageReads,
  };
});

type RawUser = Omit<UserRow, "isActive" | "isAdmin"> & { isActive: number; isAdmin: number };
type RawPublic = Omit<UserPublic, "is_active" | "is_admin"> & { is_active: number; is_admin: number };
const publicOf = (r: RawPublic): UserPublic => ({
  id: r.id,
  email: r.email,
  full_name: r.full_name,
  is_active: r.is_active === 1,
  is_admin: r.is_admin === 1,
  created_at: r.created_at,
  updated_at: r.updated_at,
});
const fromRaw = (r: RawUser | null): UserRow | undefined =>
  r === null ? undefined : { ...r, isActive: r.isActive === 1, isAdmin: r.isAdmin === 1 };

export const usersRepo = {
  findById(db: Tx, id: number): Step<UserRow | undefined> {
    const direct = directReads(db);
    return direct ? fromRaw(direct.byId.get(id)) : userStatements(db).byId.get({ id });
  },
  findByEmail(db: Tx, email: string): Step<UserRow | undefined> {
    return userStatements(db).byEmail.get({ email });
  },
  exists(db: Tx, id: number): Step<boolean> {
    const direct = directReads(db);
    if (direct) return direct.exists.get(id) !== null;
    return mapStep(userStatements(db).exists.get({ id }), (row) => row !== undefined);
  },
  insert(db: Tx, v: { email: string; passwordHash: string; fullName: string; isAdmin?: boolean }): Step<UserRow> {
    return mapStep(userStatements(db).insert.get({ ...v, isAdmin: v.isAdmin ? 1 : 0, now: nowIso() }), (row) => row!);
  },
  update(db: Tx, id: number, v: Partial<Pick<UserRow, "email" | "passwordHash" | "fullName" | "isAdmin">>): Step<UserRow | undefined> {
    return userStatements(db).update.get({
      id,
      email: v.email ?? null,
      passwordHash: v.passwordHash ?? null,
      fullName: v.fullName ?? null,
      isAdmin: v.isAdmin === undefined ? null : v.isAdmin ? 1 : 0,
      now: nowIso(),
    });
  },
  touch(db: Tx, id: number): Step<unknown> {
    return userStatements(db).touch.run({ id, now: nowIso() });
  },
  delete(db: Tx, id: number): Step<boolean> {
    return mapStep(userStatements(db).delete.all({ id }), (rows) => rows.length > 0);
  },
  /**
   * Page `page` of the users by id, in the contract's shape (see pageBody). Synchronous on bun:sqlite, where it
   * reads public columns only, straight from the connection.
   */
  page(db: Tx, page: number, limit: number): Step<{ items: UserPublic[]; total: number }> {
    const direct = directReads(db);
    if (direct) return driveSync(pageBody(direct.pageReads, page, limit));
    return driveAsync(pageBody(drizzlePageReads(userStatements(db)), page, limit));
  },
  async mostRecentlyActive(db: Tx, n: number): Promise<number[]> {
    const rows = await db.select({ id: users.id }).from(users).orderBy(desc(users.lastActiveAt)).limit(n);
    return rows.map((r) => r.id);
  },
};

/** The statements a users page reads, on either driver. */
interface PageReads {
  total(): Step<number>;
  gapsUpTo(id: number): Step<number>;
  /** `limit` users from id `from` on. */
  from(from: number, limit: number): Step<UserPublic[]>;
  /** `limit` users after skipping `offset`. */
  skip(limit: number, offset: number): Step<UserPublic[]>;
}

/**
 * `total` is the trigger-kept count (one lookup). The page's first id is the smallest x with
 * x - (deleted ids <= x) = offset + 1, found in a few index lookups of user_id_gaps instead of skipping `offset`
 * rows; only when deletions below it keep moving x does it fall back to OFFSET.
 */
function* pageBody(reads: PageReads, page: number, limit: number): Generator<unknown, { items: UserPublic[]; total: number }, unknown> {
  const offset = (page - 1) * limit;
  const total = yield* q(reads.total());
  if (offset >= total) return { items: [], total };
  let x = offset + 1;
  for (let round = 0; round < PAGE_SEARCH_ROUNDS; round++) {
    const next = offset + 1 + (yield* q(reads.gapsUpTo(x)));
    if (next === x) {
      const items = yield* q(reads.from(x, limit));
      if (items[0]?.id === x) return { items, total };
      break;
    }
    x = next;
  }
  return { items: yield* q(reads.skip(limit, offset)), total };
}

const drizzlePageReads = (s: ReturnType<typeof userStatements>): PageReads => ({
  total: () => mapStep(s.total.get(), (r) => r?.n ?? 0),
  gapsUpTo: (id) => mapStep(s.gapsUpTo.get({ id }), (r) => r?.n ?? 0),
  from: (from, limit) => mapStep(s.pageFrom.all({ from, limit }), (rows) => rows.map(toUserPublic)),
  skip: (limit, offset) => mapStep(s.pageItems.all({ limit, offset }), (rows) => rows.map(toUserPublic)),
});

/** The rows a registration's jobs write, keyed by job id: a redelivered job adds nothing. */
export const registrationRepo = {
  recordAnalytics(db: Tx, v: { jobId: string; userId: number | null; event: string; properties: Record<string, unknown> }): Step<unknown> {
    return db.insert(analyticsEvents).values(v).onConflictDoNothing({ target: analyticsEvents.jobId }).run();
  },
  recordAudit(db: Tx, v: { jobId: string; userId: number | null; action: string; details: Record<string, unknown> }): Step<unknown> {
    return db.insert(auditLog).values(v).onConflictDoNothing({ target: auditLog.jobId }).run();
  },
};
