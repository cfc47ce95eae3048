// SQL for users, posts and preferences. Rows come out in the contract's shapes.
import { count, desc, eq } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { posts, preferences, users } from "../../platform/db/schema/index.ts";
import type { PostPublic, Preferences, UserPublic } from "./model.ts";

type UserRow = typeof users.$inferSelect;
type PostRow = typeof posts.$inferSelect;
/** Any Drizzle handle that can run queries: the database or a transaction. */
export type Tx = Pick<Db, "select" | "insert" | "update" | "delete">;

export const toUserPublic = (u: UserRow): UserPublic => ({
  id: u.id,
  email: u.email,
  full_name: u.fullName,
  is_active: u.isActive,
  is_admin: u.isAdmin,
  created_at: u.createdAt,
  updated_at: u.updatedAt,
});

export const toPostPublic = (p: PostRow): PostPublic => ({
  id: p.id,
  user_id: p.userId,
  title: p.title,
  content: p.content,
  created_at: p.createdAt,
});

export const nowIso = () => new Date().toISOString();

export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: string }).code ?? "";
    const msg = (e as { message?: string }).message ?? "";
    if (code.includes("CONSTRAINT_UNIQUE") || code.includes("CONSTRAINT_PRIMARYKEY") || /UNIQUE constraint failed/.test(msg)) return true;
  }
  return false;
}

export const usersRepo = {
  async findById(db: Tx, id: number): Promise<UserRow | undefined> {
    const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1);
    return row;
  },
  async findByEmail(db: Tx, email: string): Promise<UserRow | undefined> {
    const [row] = await db.select().from(users).where(eq(users.email, email)).limit(1);
    return row;
  },
  async exists(db: Tx, id: number): Promise<boolean> {
    const [row] = await db.select({ id: users.id }).from(users).where(eq(users.id, id)).limit(1);
    return row !== undefined;
  },
  async insert(db: Tx, v: { email: string; passwordHash: string; fullName: string; isAdmin?: boolean }): Promise<UserRow> {
    const now = nowIso();
    const [row] = await db
      .insert(users)
      .values({ ...v, isAdmin: v.isAdmin ?? false, createdAt: now, updatedAt: now, lastActiveAt: now })
      .returning();
    return row!;
  },
  async update(db: Tx, id: number, v: Partial<Pick<UserRow, "email" | "passwordHash" | "fullName" | "isAdmin">>): Promise<UserRow | undefined> {
    const now = nowIso();
    const [row] = await db.update(users).set({ ...v, updatedAt: now, lastActiveAt: now }).where(eq(users.id, id)).returning();
    return row;
  },
  async touch(db: Tx, id: number): Promise<void> {
    await db.update(users).set({ lastActiveAt: nowIso() }).where(eq(users.id, id));
  },
  async delete(db: Tx, id: number): Promise<boolean> {
    const rows = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
    return rows.length > 0;
  },
  async page(db: Tx, page: number, limit: number): Promise<{ items: UserRow[]; total: number }> {
    const items = await db.select().from(users).orderBy(users.id).limit(limit).offset((page - 1) * limit);
    const [c] = await db.select({ n: count() }).from(users);
    return { items, total: c?.n ?? 0 };
  },
  async mostRecentlyActive(db: Tx, n: number): Promise<number[]> {
    const rows = await db.select({ id: users.id }).from(users).orderBy(desc(users.lastActiveAt)).limit(n);
    return rows.map((r) => r.id);
  },
};

export const postsRepo = {
  async insert(db: Tx, userId: number, title: string, content: string): Promise<PostRow> {
    const [row] = await db.insert(posts).values({ userId, title, content, createdAt: nowIso() }).returning();
    return row!;
  },
  /** Newest first; the (user_id, created_at, id) index serves it. */
  async page(db: Tx, userId: number, page: number, limit: number): Promise<{ items: PostRow[]; total: number }> {
    const items = await db
      .select()
      .from(posts)
      .where(eq(posts.userId, userId))
      .orderBy(desc(posts.createdAt), desc(posts.id))
      .limit(limit)
      .offset((page - 1) * limit);
    const [c] = await db.select({ n: count() }).from(posts).where(eq(posts.userId, userId));
    return { items, total: c?.n ?? 0 };
  },
  async newest(db: Tx, userId: number, n: number): Promise<PostRow[]> {
    return db.select().from(posts).where(eq(posts.userId, userId)).orderBy(desc(posts.createdAt), desc(posts.id)).limit(n);
  },
};

export const preferencesRepo = {
  async get(db: Tx, userId: number): Promise<Preferences> {
    const [row] = await db.select({ data: preferences.data }).from(preferences).where(eq(preferences.userId, userId)).limit(1);
    return row?.data ?? {};
  },
  async put(db: Tx, userId: number, data: Preferences): Promise<void> {
    const now = nowIso();
    await db
      .insert(preferences)
      .values({ userId, data, updatedAt: now })
      .onConflictDoUpdate({ target: preferences.userId, set: { data, updatedAt: now } });
  },
};

