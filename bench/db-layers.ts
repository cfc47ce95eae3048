// Where a cache-missing read and a write spend their time, in process (no network, no load generator): the same
// request through app.handle (Elysia: routing, id validation, auth, hooks, request log), through the service
// function alone, and as bare bun:sqlite statements plus JSON; the admin list too (the app's way, which the fast
// answer in front of it skips); for the writes, also their fast answer (fast-write.ts). A diagnostic for
// docs/database.md, not part of `bun run bench`.
//
//   bun run bench/db-layers.ts
import { Database as BunDatabase } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../src/main/app.ts";
import { loadConfig } from "../src/config.ts";
import { cachedJson } from "../src/platform/http/cached-read.ts";
import { usersRepo } from "../src/modules/users/repository.ts";
import { postsRepo } from "../src/modules/posts/repository.ts";
import { preferencesRepo } from "../src/modules/preferences/repository.ts";
import * as users from "../src/modules/users/service.ts";
import * as prefs from "../src/modules/preferences/service.ts";
import * as posts from "../src/modules/posts/service.ts";
import { fastWrites } from "../src/platform/http/fast-write.ts";
import { requestObserver } from "../src/platform/http/request-context.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { buildDeps } from "../src/main/platform.ts";
import { userDetailParts } from "../src/main/features.ts";
import { build } from "./db.bench.ts";
import { table } from "./lib.ts";

const dir = mkdtempSync(join(import.meta.dir, "..", ".tmp", "db-layers-"));
const file = join(dir, "app.db");
await build(file, 1_000);
const config = loadConfig({
  NODE_ENV: "production",
  DATABASE_URL: `file:${file}`,
  JWT_SECRET: "x".repeat(40),
  METRICS_ENABLED: "false",
  CACHE_ENABLED: "false",
  CACHE_WARM_COUNT: "0",
  RATE_LIMIT_READ_PER_MINUTE: "0",
  RATE_LIMIT_WRITE_PER_MINUTE: "0",
  RATE_LIMIT_LOGIN_PER_MINUTE: "0",
  ADMIN_EMAIL: "layers-admin@example.com",
  ADMIN_PASSWORD: "bench-password-1",
});
const built = await buildDeps(config, createLogger("info", {}, () => {}));
const app = createApp(built.deps, built.features);
const login = await app.handle(
  new Request("http://localhost/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "bench1@example.com", password: "bench-password-1" }),
  }),
);
const headers = { authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` };
const adminLogin = await app.handle(
  new Request("http://localhost/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "layers-admin@example.com", password: "bench-password-1" }),
  }),
);
const admin = { authorization: `Bearer ${((await adminLogin.json()) as { access_token: string }).access_token}` };
const raw = new BunDatabase(file);
// As bench/db-bare.ts and the service's connection (a bare write commits without an fsync too), except that it
// waits for the service's checkpointer, which may hold the write lock for a moment.
raw.exec("PRAGMA busy_timeout = 1000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536");
const s = {
  user: raw.prepare("SELECT id, email, full_name, is_active, is_admin, created_at, updated_at FROM users WHERE id = ?"),
  exists: raw.prepare("SELECT id FROM users WHERE id = ?"),
  posts: raw.prepare("SELECT id, user_id, title, content, created_at FROM posts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 10"),
  prefs: raw.prepare("SELECT data FROM preferences WHERE user_id = ?"),
  total: raw.prepare("SELECT n FROM table_counts WHERE name = 'users'"),
  gapsUpTo: raw.prepare("SELECT count(*) AS n FROM user_id_gaps WHERE id <= ?"),
  usersFrom: raw.prepare("SELECT id, email, full_name, is_active, is_admin, created_at, updated_at FROM users WHERE id >= ? ORDER BY id LIMIT 20"),
};
/** A page of the admin list (20 users each) for the loop's id. */
const pageOf = (id: number) => 1 + (id % 50);
const db = built.deps.database.db;
const detailDeps = { ...built.deps, detail: userDetailParts(built.deps.database) };
const N = 20_000;
async function us(fn: (id: number) => unknown): Promise<number> {
  for (let i = 0; i < 3_000; i++) await fn(1 + (i % 1000));
  // CPU time of this process (steadier than the clock on a shared machine), microseconds per request.
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await fn(1 + (i % 1000));
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / N) * 10) / 10;
}
const text = async (r: Response | Promise<Response>) => (await r).text();
const rows: Record<string, string | number>[] = [
  {
    path: "GET /users/{id}",
    "app.handle us": await us((id) => text(app.handle(new Request(`http://localhost/api/v1/users/${id}`, { headers })))),
    "service + Response us": await us(async (id) => text(cachedJson(await users.getDetail(detailDeps, id)))),
    "repository calls us": await us((id) => [usersRepo.findById(db, id), postsRepo.newest(db, id, 10), preferencesRepo.get(db, id)]),
    "bare statements + JSON us": await us((id) =>
      text(new Response(JSON.stringify({ user: s.user.get(id), posts: s.posts.all(id), preferences: JSON.parse((s.prefs.get(id) as { data: string }).data) }))),
    ),
  },
  {
    path: "GET /users/{id}/preferences",
    "app.handle us": await us((id) => text(app.handle(new Request(`http://localhost/api/v1/users/${id}/preferences`, { headers })))),
    "service + Response us": await us(async (id) => text(cachedJson(await prefs.get(built.deps, id)))),
    "repository calls us": await us((id) => [usersRepo.exists(db, id), preferencesRepo.get(db, id)]),
    "bare statements + JSON us": await us((id) => {
      s.exists.get(id);
      return text(new Response(JSON.stringify(JSON.parse((s.prefs.get(id) as { data: string }).data))));
    }),
  },
  {
    path: "GET /users?page&limit=20 (admin)",
    "app.handle us": await us((id) => text(app.handle(new Request(`http://localhost/api/v1/users?page=${pageOf(id)}&limit=20`, { headers: admin })))),
    "service + Response us": await us(async (id) => text(new Response(JSON.stringify(await users.list(built.deps, pageOf(id), 20))))),
    "repository calls us": await us((id) => usersRepo.page(db, pageOf(id), 20)),
    "bare statements + JSON us": await us((id) => {
      const page = pageOf(id);
      const total = (s.total.get() as { n: number }).n;
      const first = (page - 1) * 20 + 1 + (s.gapsUpTo.get((page - 1) * 20 + 1) as { n: number }).n;
      const items = (s.usersFrom.all(first) as Record<string, unknown>[]).map((u) => ({
        id: u.id,
        email: u.email,
        full_name: u.full_name,
        is_active: u.is_active === 1,
        is_admin: u.is_admin === 1,
        created_at: u.created_at,
        updated_at: u.updated_at,
      }));
      return text(new Response(JSON.stringify({ items, page, limit: 20, total })));
    }),
  },
  {
    path: "GET /health/live (no database)",
    "app.handle us": await us(() => text(app.handle(new Request("http://localhost/health/live")))),
  },
];

// The writes of the db bench, as the bench's writer (user 1) sends them.
const quiet = createLogger("info", {}, () => {});
const fast = fastWrites(app.routes, { auth: built.deps.auth, bodyLimit: config.BODY_LIMIT_BYTES, isPrimary: () => true, observer: requestObserver(quiet), logger: quiet });
const principal = (await built.deps.auth.principal(headers.authorization))!;
const w = {
  begin: raw.prepare("BEGIN IMMEDIATE"),
  commit: raw.prepare("COMMIT"),
  prefsStamped: raw.prepare("SELECT data, key_written_at FROM preferences WHERE user_id = ? LIMIT 1"),
  putPrefs: raw.prepare(
    "INSERT INTO preferences (user_id, data, key_written_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, key_written_at = excluded.key_written_at, updated_at = excluded.updated_at",
  ),
  updateUser: raw.prepare(
    "UPDATE users SET full_name = coalesce(?, full_name), updated_at = ?, last_active_at = ? WHERE id = ? RETURNING id, email, full_name, is_active, is_admin, created_at, updated_at",
  ),
  insertPost: raw.prepare("INSERT INTO posts (user_id, title, content, created_at) VALUES (?, ?, ?, ?) RETURNING id, user_id, title, content, created_at"),
  touch: raw.prepare("UPDATE users SET last_active_at = ? WHERE id = ?"),
};
const bareTx = (body: () => unknown) => {
  w.begin.run();
  const out = body();
  w.commit.run();
  return text(new Response(JSON.stringify(out)));
};
const writeRequest = (method: string, path: string, body: string) =>
  new Request(`http://localhost${path}`, { method, headers: { ...headers, "content-type": "application/json", "content-length": String(body.length) }, body });
const fastAnswer = async (route: string, method: string, request: Request) => {
  const prepared = await fast.get(route)!.get(method)!(request, { id: String(principal.userId) }, performance.now());
  // Read and checked (before the lane, on the server), then the write (in its turn).
  const out = typeof prepared === "function" ? await prepared() : prepared;
  if (!(out instanceof Response)) throw new Error(`the fast answer of ${method} ${route} declined`);
  return out.text();
};
const me = principal.userId;
const prefsBody = JSON.stringify({ theme: "dark" });
const userBody = JSON.stringify({ full_name: "Bench Writer" });
const postBody = JSON.stringify({ title: "bench", content: "a post written by the benchmark" });
const iso = () => new Date().toISOString();
table(rows);
console.log();
const writeRows: Record<string, string | number>[] = [
  {
    path: "PATCH /users/{id}/preferences",
    "app.handle us": await us(() => text(app.handle(writeRequest("PATCH", `/api/v1/users/${me}/preferences`, prefsBody)))),
    "fast answer us": await us(() => fastAnswer("/api/v1/users/:id/preferences", "PATCH", writeRequest("PATCH", `/api/v1/users/${me}/preferences`, prefsBody))),
    "service + Response us": await us(async () => text(new Response(JSON.stringify(await prefs.merge(built.deps, me, { theme: "dark" }))))),
    "bare statements + JSON us": await us(() =>
      bareTx(() => {
        s.exists.get(me);
        const row = w.prefsStamped.get(me) as { data: string; key_written_at: string } | null;
        const m = row ? JSON.parse(row.data) : {};
        const stamps = row ? JSON.parse(row.key_written_at) : {};
        m.theme = "dark";
        stamps.theme = Date.now();
        w.putPrefs.run(me, JSON.stringify(m), JSON.stringify(stamps), iso());
        return m;
      }),
    ),
  },
  {
    path: "PATCH /users/{id}",
    "app.handle us": await us(() => text(app.handle(writeRequest("PATCH", `/api/v1/users/${me}`, userBody)))),
    "fast answer us": await us(() => fastAnswer("/api/v1/users/:id", "PATCH", writeRequest("PATCH", `/api/v1/users/${me}`, userBody))),
    "service + Response us": await us(async () => text(new Response(JSON.stringify(await users.update(built.deps, me, { full_name: "Bench Writer" }))))),
    "bare statements + JSON us": await us(() => bareTx(() => w.updateUser.get("Bench Writer", iso(), iso(), me))),
  },
  {
    path: "POST /users/{id}/posts",
    "app.handle us": await us(() => text(app.handle(writeRequest("POST", `/api/v1/users/${me}/posts`, postBody)))),
    "fast answer us": await us(() => fastAnswer("/api/v1/users/:id/posts", "POST", writeRequest("POST", `/api/v1/users/${me}/posts`, postBody))),
    "service + Response us": await us(async () => text(new Response(JSON.stringify(await posts.create(built.deps, me, "bench", "a post written by the benchmark"))))),
    "bare statements + JSON us": await us(() =>
      bareTx(() => {
        s.exists.get(me);
        const post = w.insertPost.get(me, "bench", "a post written by the benchmark", iso());
        w.touch.run(iso(), me);
        return post;
      }),
    ),
  },
];
table(writeRows);
await built.close();
raw.close();
rmSync(dir, { recursive: true, force: true });
