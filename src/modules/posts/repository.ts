// SQL for posts. Rows come out in the contract's shape. Each call returns its result directly on bun:sqlite and
// a promise on libSQL: `await` it, or `yield* q(...)` inside a write body.
import { desc, eq, sql } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, sqliteOf, type Step } from "../../platform/db/step.ts";
import { posts } from "../../platform/db/schema/index.ts";
import type { PostPublic } from "./model.ts";

type PostRow = typeof posts.$inferSelect;

export const toPostPublic = (p: PostRow): PostPublic => ({
  id: p.id,
  user_id: p.userId,
  title: p.title,
  content: p.content,
  created_at: p.createdAt,
});

const p = sql.placeholder;

const postStatements = preparedFor((db) => ({
  insert: db
    .insert(posts)
    .values({ userId: p("userId"), title: p("title"), content: p("content"), createdAt: p("now") })
    .returning()
    .prepare(),
  // Newest first; the (user_id, created_at, id) index serves both.
  page: db
    .select()
    .from(posts)
    .where(eq(posts.userId, p("userId")))
    .orderBy(desc(posts.createdAt), desc(posts.id))
    .limit(p("limit"))
    .offset(p("offset"))
    .prepare(),
  count: db.select({ n: sql<number>`count(*)` }).from(posts).where(eq(posts.userId, p("userId"))).prepare(),
}));

// The cache-missing reads and the insert straight from bun:sqlite (null on libSQL, which uses the statements
// above); columns are aliased to the rows' property names, and the test suite compares both drivers' rows.
const POST_COLUMNS = "id, user_id AS userId, title, content, created_at AS createdAt";
const direct = preparedFor((db) => {
  const c = sqliteOf(db);
  if (!c) return null;
  return {
    insert: c.prepare<PostRow, [number, string, string, string]>(
      `INSERT INTO posts (user_id, title, content, created_at) VALUES (?, ?, ?, ?) RETURNING ${POST_COLUMNS}`,
    ),
    posts: c.prepare<PostRow, [number, number, number]>(
      `SELECT ${POST_COLUMNS} FROM posts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
    ),
    postCount: c.prepare<{ n: number }, [number]>("SELECT count(*) AS n FROM posts WHERE user_id = ?"),
  };
});

export const postsRepo = {
  insert(db: Db, userId: number, title: string, content: string): Step<PostRow> {
    const now = new Date().toISOString();
    const d = direct(db);
    if (d) return d.insert.get(userId, title, content, now)!;
    return mapStep(postStatements(db).insert.get({ userId, title, content, now }), (row) => row!);
  },
  async page(db: Db, userId: number, page: number, limit: number): Promise<{ items: PostRow[]; total: number }> {
    const d = direct(db);
    if (d) return { items: d.posts.all(userId, limit, (page - 1) * limit), total: d.postCount.get(userId)?.n ?? 0 };
    const s = postStatements(db);
    const items = await s.page.all({ userId, limit, offset: (page - 1) * limit });
    const c = await s.count.get({ userId });
    return { items, total: c?.n ?? 0 };
  },
  newest(db: Db, userId: number, n: number): Step<PostRow[]> {
    const d = direct(db);
    return d ? d.posts.all(userId, n, 0) : postStatements(db).page.all({ userId, limit: n, offset: 0 });
  },
};
