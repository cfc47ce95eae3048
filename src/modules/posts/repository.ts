// SQL for posts. Rows come out in the contract's shape. Each call returns its result directly on bun:sqlite and
// a promise on libSQL: `await` it, or `yield* q(...)` inside a write body.
import { desc, eq, sql } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { mapStep, preparedFor, type Step } from "../../platform/db/step.ts";
import { statement } from "../../platform/db/statement.ts";
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

/** The statements, declared once for both drivers (see statement.ts); exported for the tests that compare drivers. */
export const postStatements = preparedFor((db) => ({
  insert: statement(
    db,
    db.insert(posts).values({ userId: p("userId"), title: p("title"), content: p("content"), createdAt: p("now") }).returning(),
  ),
  // Newest first; the (user_id, created_at, id) index serves both.
  page: statement(
    db,
    db
      .select()
      .from(posts)
      .where(eq(posts.userId, p("userId")))
      .orderBy(desc(posts.createdAt), desc(posts.id))
      .limit(p("limit"))
      .offset(p("offset")),
  ),
  count: statement(db, db.select({ n: sql<number>`count(*)` }).from(posts).where(eq(posts.userId, p("userId")))),
}));

export const postsRepo = {
  insert(db: Db, userId: number, title: string, content: string): Step<PostRow> {
    return mapStep(postStatements(db).insert.get({ userId, title, content, now: new Date().toISOString() }), (row) => row!);
  },
  async page(db: Db, userId: number, page: number, limit: number): Promise<{ items: PostRow[]; total: number }> {
    const s = postStatements(db);
    const items = await s.page.all({ userId, limit, offset: (page - 1) * limit });
    const c = await s.count.get({ userId });
    return { items, total: c?.n ?? 0 };
  },
  newest(db: Db, userId: number, n: number): Step<PostRow[]> {
    return postStatements(db).page.all({ userId, limit: n, offset: 0 });
  },
};
