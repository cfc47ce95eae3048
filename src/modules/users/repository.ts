// SQL for users, and the rows their registration's jobs write. Rows come out in the contract's shapes. Each call
// returns its result directly on bun:sqlite and a promise on libSQL: `await` it, or `yield* q(...)` inside a
// write body.
import { desc, eq, gte, lte, sql } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, type Step } from "../../platform/db/step.ts";
import { statement } from "../../platform/db/statement.ts";
import { drive, q } from "../../platform/db/tx.ts";
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

// Lookups by a unique key carry no limit(1) (see statement()).
const byId = eq(users.id, p("id"));

/** The contract's public fields, by their names there: the list reads these only (the hash and the last activity stay on disk). */
const publicColumns = {
  id: users.id,
  email: users.email,
  full_name: users.fullName,
  is_active: users.isActive,
  is_admin: users.isAdmin,
  created_at: users.createdAt,
  updated_at: users.updatedAt,
} satisfies Record<keyof UserPublic, unknown>;

/** The statements, declared once for both drivers (see statement.ts); exported for the tests that compare drivers. */
export const userStatements = preparedFor((db) => ({
  byId: statement(db, db.select().from(users).where(byId)),
  byEmail: statement(db, db.select().from(users).where(eq(users.email, p("email")))),
  exists: statement(db, db.select({ id: users.id }).from(users).where(byId)),
  insert: statement(
    db,
    db
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
      .returning(),
  ),
  // One statement for every combination of fields: a null parameter keeps the column as it is.
  update: statement(
    db,
    db
      .update(users)
      .set({
        email: sql`coalesce(${p("email")}, ${users.email})`,
        passwordHash: sql`coalesce(${p("passwordHash")}, ${users.passwordHash})`,
        fullName: sql`coalesce(${p("fullName")}, ${users.fullName})`,
        isAdmin: sql`coalesce(${p("isAdmin")}, ${users.isAdmin})`,
        updatedAt: sql`${p("now")}`,
        lastActiveAt: sql`${p("now")}`,
      })
      .where(byId)
      .returning(),
  ),
  touch: statement(db, db.update(users).set({ lastActiveAt: sql`${p("now")}` }).where(byId)),
  delete: statement(db, db.delete(users).where(byId).returning({ id: users.id })),
  pageItems: statement(db, db.select(publicColumns).from(users).orderBy(users.id).limit(p("limit")).offset(p("offset"))),
  pageFrom: statement(db, db.select(publicColumns).from(users).where(gte(users.id, p("from"))).orderBy(users.id).limit(p("limit"))),
  gapsUpTo: statement(db, db.select({ n: sql<number>`count(*)` }).from(userIdGaps).where(lte(userIdGaps.id, p("id")))),
  total: statement(db, db.select({ n: tableCounts.n }).from(tableCounts).where(eq(tableCounts.name, "users"))),
}));

/** Rounds of the first-id search before a page falls back to skipping rows (many deletions below it). */
const PAGE_SEARCH_ROUNDS = 16;

/** The reads of a users page, built once per handle. */
const pageReadsFor = preparedFor((db): PageReads => {
  const s = userStatements(db);
  return {
    total: () => mapStep(s.total.get(), (r) => r?.n ?? 0),
    gapsUpTo: (id) => mapStep(s.gapsUpTo.get({ id }), (r) => r?.n ?? 0),
    from: (from, limit) => s.pageFrom.all({ from, limit }),
    skip: (limit, offset) => s.pageItems.all({ limit, offset }),
  };
});

export const usersRepo = {
  findById(db: Tx, id: number): Step<UserRow | undefined> {
    return userStatements(db).byId.get({ id });
  },
  findByEmail(db: Tx, email: string): Step<UserRow | undefined> {
    return userStatements(db).byEmail.get({ email });
  },
  exists(db: Tx, id: number): Step<boolean> {
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
  /** Page `page` of the users by id, in the contract's shape (see pageBody). Synchronous on bun:sqlite. */
  page(db: Tx, page: number, limit: number): Step<{ items: UserPublic[]; total: number }> {
    return drive(pageBody(pageReadsFor(db), page, limit));
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

/** The rows a registration's jobs write, keyed by job id: a redelivered job adds nothing. */
export const registrationRepo = {
  recordAnalytics(db: Tx, v: { jobId: string; userId: number | null; event: string; properties: Record<string, unknown> }): Step<unknown> {
    return db.insert(analyticsEvents).values(v).onConflictDoNothing({ target: analyticsEvents.jobId }).run();
  },
  recordAudit(db: Tx, v: { jobId: string; userId: number | null; action: string; details: Record<string, unknown> }): Step<unknown> {
    return db.insert(auditLog).values(v).onConflictDoNothing({ target: auditLog.jobId }).run();
  },
};
