// Where a cache-missing read spends its time, in process (no network, no load generator): the same request
// through app.handle (Elysia: routing, id validation, auth, hooks, request log), through the service function
// alone, and as bare bun:sqlite statements plus JSON; the admin list too (the app's way, which the fast answer
// in front of it skips). A diagnostic for docs/database.md, not part of `bun run bench`.
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
import { createLogger } from "../src/platform/observability/logger.ts";
import { buildDeps } from "../src/main/platform.ts";
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
const N = 20_000;
async function us(fn: (id: number) => unknown): Promise<number> {
  for (let i = 0; i < 3_000; i++) await fn(1 + (i % 1000));
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(1 + (i % 1000));
  return Math.round(((performance.now() - t0) * 1000) / N * 10) / 10;
}
const text = async (r: Response | Promise<Response>) => (await r).text();
const rows: Record<string, string | number>[] = [
  {
    path: "GET /users/{id}",
    "app.handle us": await us((id) => text(app.handle(new Request(`http://localhost/api/v1/users/${id}`, { headers })))),
    "service + Response us": await us(async (id) => text(cachedJson(await users.getDetail(built.deps, id)))),
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
table(rows);
await built.close();
raw.close();
rmSync(dir, { recursive: true, force: true });
