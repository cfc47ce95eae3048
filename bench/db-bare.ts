// The baseline of `bun run bench -- db`: bare Bun.serve + SQLite answering the service's database paths with
// the same queries (statements prepared once) and the same response bytes, and nothing else: no framework, no
// auth (the bearer header is ignored; /users/me is the user ME_ID), no cache, no logging, no metrics.
// DRIVER=bun:sqlite (default) or DRIVER=libsql (the `libsql` package's synchronous API, for the driver choice).
import { Database as BunDatabase } from "bun:sqlite";

interface Stmt {
  get(...args: unknown[]): any;
  all(...args: unknown[]): any[];
  run(...args: unknown[]): unknown;
}
interface Conn {
  prepare(sql: string): Stmt;
  exec(sql: string): void;
}

async function open(path: string): Promise<Conn> {
  if (process.env.DRIVER === "libsql") {
    const { default: Libsql } = (await import("libsql" as string)) as { default: new (p: string) => Conn };
    return new Libsql(path);
  }
  return new BunDatabase(path) as unknown as Conn;
}

const db = await open(process.env.DB!);
db.exec("PRAGMA busy_timeout = 0");
db.exec("PRAGMA synchronous = NORMAL");
db.exec("PRAGMA foreign_keys = ON");
db.exec("PRAGMA cache_size = -65536"); // as the service's connection
const ME = Number(process.env.ME_ID);

const s = {
  user: db.prepare("SELECT id, email, full_name, is_active, is_admin, created_at, updated_at FROM users WHERE id = ? LIMIT 1"),
  exists: db.prepare("SELECT id FROM users WHERE id = ? LIMIT 1"),
  posts: db.prepare("SELECT id, user_id, title, content, created_at FROM posts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"),
  postCount: db.prepare("SELECT count(*) AS n FROM posts WHERE user_id = ?"),
  prefs: db.prepare("SELECT data FROM preferences WHERE user_id = ? LIMIT 1"),
  prefsStamped: db.prepare("SELECT data, key_written_at FROM preferences WHERE user_id = ? LIMIT 1"),
  total: db.prepare("SELECT n FROM table_counts WHERE name = 'users'"),
  gapsUpTo: db.prepare("SELECT count(*) AS n FROM user_id_gaps WHERE id <= ?"),
  usersFrom: db.prepare("SELECT id, email, full_name, is_active, is_admin, created_at, updated_at FROM users WHERE id >= ? ORDER BY id LIMIT ?"),
  insertPost: db.prepare("INSERT INTO posts (user_id, title, content, created_at) VALUES (?, ?, ?, ?) RETURNING id, user_id, title, content, created_at"),
  touch: db.prepare("UPDATE users SET last_active_at = ? WHERE id = ?"),
  putPrefs: db.prepare(
    "INSERT INTO preferences (user_id, data, key_written_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, key_written_at = excluded.key_written_at, updated_at = excluded.updated_at",
  ),
  updateUser: db.prepare(
    "UPDATE users SET email = coalesce(?, email), password_hash = coalesce(?, password_hash), full_name = coalesce(?, full_name), is_admin = coalesce(?, is_admin), updated_at = ?, last_active_at = ? WHERE id = ? RETURNING id, email, full_name, is_active, is_admin, created_at, updated_at",
  ),
  begin: db.prepare("BEGIN IMMEDIATE"),
  commit: db.prepare("COMMIT"),
};

const userPublic = (u: any) => ({
  id: u.id,
  email: u.email,
  full_name: u.full_name,
  is_active: u.is_active === 1,
  is_admin: u.is_admin === 1,
  created_at: u.created_at,
  updated_at: u.updated_at,
});

const prefsOf = (id: number) => {
  const row = s.prefs.get(id);
  return row ? JSON.parse(row.data) : {};
};

function detail(id: number): string | null {
  const u = s.user.get(id);
  if (!u) return null;
  return JSON.stringify({ user: userPublic(u), posts: s.posts.all(id, 10, 0), preferences: prefsOf(id) });
}

/** BEGIN IMMEDIATE with the service's policy: busy_timeout 0, retried off the event loop. */
async function tx<T>(fn: () => T): Promise<T> {
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      s.begin.run();
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== "SQLITE_BUSY") throw err;
      await Bun.sleep(delay);
    }
  }
  try {
    const r = fn();
    s.commit.run();
    return r;
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

const json = (body: string | null, status = 200) =>
  body === null ? new Response("not found", { status: 404 }) : new Response(body, { status, headers: { "content-type": "application/json" } });

const PREFIX = "/api/v1/users";

Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  async fetch(req) {
    const url = new URL(req.url);
    const rest = url.pathname.slice(PREFIX.length);
    const parts = rest.split("/").filter(Boolean);
    if (req.method === "GET") {
      if (parts.length === 0) {
        const page = Number(url.searchParams.get("page") ?? 1);
        const limit = Number(url.searchParams.get("limit") ?? 10);
        const total = s.total.get()?.n ?? 0;
        const offset = (page - 1) * limit;
        let items: unknown[] = [];
        if (offset < total) {
          let x = offset + 1;
          for (;;) {
            const next = offset + 1 + s.gapsUpTo.get(x).n;
            if (next === x) break;
            x = next;
          }
          items = s.usersFrom.all(x, limit).map(userPublic);
        }
        return json(JSON.stringify({ items, page, limit, total }));
      }
      if (parts[0] === "me") return json(detail(ME));
      const id = Number(parts[0]);
      if (parts.length === 1) return json(detail(id));
      if (parts[1] === "posts") {
        const page = Number(url.searchParams.get("page") ?? 1);
        const limit = Number(url.searchParams.get("limit") ?? 10);
        if (!s.exists.get(id)) return json(null);
        const items = s.posts.all(id, limit, (page - 1) * limit);
        return json(JSON.stringify({ items, page, limit, total: s.postCount.get(id).n }));
      }
      if (parts[1] === "preferences") return json(s.exists.get(id) ? JSON.stringify(prefsOf(id)) : null);
    }
    const id = Number(parts[0]);
    const body = (await req.json()) as Record<string, any>;
    const now = new Date().toISOString();
    if (req.method === "POST" && parts[1] === "posts") {
      const post = await tx(() => {
        if (!s.exists.get(id)) return null;
        const row = s.insertPost.get(id, body.title, body.content, now);
        s.touch.run(now, id);
        return row;
      });
      return json(post && JSON.stringify(post), 201);
    }
    if (req.method === "PATCH" && parts[1] === "preferences") {
      const merged = await tx(() => {
        if (!s.exists.get(id)) return null;
        const row = s.prefsStamped.get(id);
        const m = row ? JSON.parse(row.data) : {};
        const stamps = row ? JSON.parse(row.key_written_at) : {};
        const at = Date.now();
        for (const [k, v] of Object.entries(body)) {
          if (v === null) delete m[k];
          else m[k] = v;
          stamps[k] = Math.max(stamps[k] ?? 0, at);
        }
        s.putPrefs.run(id, JSON.stringify(m), JSON.stringify(stamps), now);
        return m;
      });
      return json(merged && JSON.stringify(merged));
    }
    if (req.method === "PATCH" && parts.length === 1) {
      const u = await tx(() => s.updateUser.get(null, null, body.full_name ?? null, null, now, now, id));
      return json(u ? JSON.stringify(userPublic(u)) : null);
    }
    return new Response("not found", { status: 404 });
  },
});
console.log("ready");
