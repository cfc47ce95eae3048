// Idempotency-Key on POST and PATCH, as CONTRACT.md says: the first response replayed to a retry (from another
// instance too, and after Redis lost its data), 422 for the same key with another body, 409 while the first runs.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, tempDir, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const apps: TestApp[] = [];
let redis: PrivateRedis | undefined;
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await redis?.stop();
});

async function app(overrides: Record<string, string | undefined> = {}, dir?: string) {
  const a = await makeApp({ CRON_ENABLED: "false", ...overrides }, dir);
  apps.push(a);
  return a;
}

describe("Idempotency-Key", () => {
  test("a retried registration is answered with the first response, replayed, and creates one user", async () => {
    const a = await app();
    const body = { email: "once@example.com", password: "correct-horse", full_name: "Once" };
    const headers = { "idempotency-key": "reg-1" };
    const first = await a.request("POST", "/api/v1/users", { body, headers });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const firstBody = await first.json();
    const again = await a.request("POST", "/api/v1/users", { body, headers: { ...headers, "x-request-id": "retry-1" } });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("x-request-id")).toBe("retry-1");
    expect(await again.json()).toEqual(firstBody);
    // Without the key, the same body is a new request: the email is taken.
    expect((await a.request("POST", "/api/v1/users", { body })).status).toBe(409);
  });

  test("a replay carries the retry's own CORS answer, not the first request's", async () => {
    const a = await app({ CORS_ORIGINS: "https://a.example,https://b.example" });
    const u = await a.user();
    const path = `/api/v1/users/${u.id}/posts`;
    const send = (origin?: string) =>
      a.request("POST", path, { token: u.token, body: { title: "t", content: "c" }, headers: { "idempotency-key": "cors-1", ...(origin ? { origin } : {}) } });
    const first = await send("https://a.example");
    expect(first.status).toBe(201);
    expect(first.headers.get("access-control-allow-origin")).toBe("https://a.example");
    for (const origin of ["https://evil.example", undefined, "https://b.example"]) {
      const again = await send(origin);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(again.headers.get("access-control-allow-origin")).toBe(origin === "https://b.example" ? origin : null);
      expect(again.headers.get("access-control-expose-headers") !== null).toBe(origin === "https://b.example");
      expect(again.headers.get("vary")).toBe("Origin");
    }
  });

  test("the same key with another body is a 422; another caller's same key is its own", async () => {
    const a = await app();
    const u = await a.user();
    const v = await a.user();
    const h = { "idempotency-key": "k-42" };
    expect((await a.request("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { a: 1 }, headers: h })).status).toBe(200);
    const other = await a.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { a: 2 }, headers: h });
    expect(other.status).toBe(422);
    expect(other.body.errors[0].field).toBe("Idempotency-Key");
    expect((await a.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body).toEqual({ a: 1 });
    const theirs = await a.request("PATCH", `/api/v1/users/${v.id}/preferences`, { token: v.token, body: { b: 1 }, headers: h });
    expect(theirs.status).toBe(200);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
  });

  test("the same JSON spelled another way (key order, whitespace) is the same request: replayed, not a 422", async () => {
    const a = await app();
    const u = await a.user();
    const h = { "idempotency-key": "spelling-1" };
    const path = `/api/v1/users/${u.id}/posts`;
    const first = await a.json("POST", path, { token: u.token, body: '{"title":"t","content":"c"}', headers: h });
    expect(first.status).toBe(201);
    const again = await a.request("POST", path, { token: u.token, body: '{ "content": "c",\n  "title": "t" }', headers: h });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await again.json()).id).toBe(first.body.id);
    const changed = await a.json("POST", path, { token: u.token, body: '{"content":"c","title":"t2"}', headers: h });
    expect(changed.status).toBe(422);
    expect((await a.json("GET", path, { token: u.token })).body.total).toBe(1);
  });

  test("a stored answer is not replayed to a token revoked since: the route answers 401", async () => {
    const a = await app();
    const u = await a.user();
    const h = { "idempotency-key": "after-logout" };
    const path = `/api/v1/users/${u.id}/preferences`;
    expect((await a.request("PATCH", path, { token: u.token, body: { a: 1 }, headers: h })).status).toBe(200);
    const replay = await a.request("PATCH", path, { token: u.token, body: { a: 1 }, headers: h });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await a.request("POST", "/api/v1/auth/logout", { token: u.token })).status).toBe(204);
    const after = await a.request("PATCH", path, { token: u.token, body: { a: 1 }, headers: h });
    expect(after.status).toBe(401);
    expect(after.headers.get("content-type")).toContain("application/problem+json");
    expect(after.headers.get("idempotent-replayed")).toBeNull();
  });

  test("the same user's retry after logging in again (a new session) is replayed: one post, not two", async () => {
    const a = await app();
    const u = await a.user();
    const h = { "idempotency-key": "new-session" };
    const path = `/api/v1/users/${u.id}/posts`;
    const body = { title: "once", content: "x" };
    const first = await a.json("POST", path, { token: u.token, body, headers: h });
    expect(first.status).toBe(201);
    const token = await a.login(u.email, "correct-horse");
    expect(token).not.toBe(u.token);
    const again = await a.json("POST", path, { token, body, headers: h });
    expect(again.status).toBe(201);
    expect(again.res.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await a.json("GET", `${path}?limit=100`, { token })).body.total).toBe(1);
    // Another user's same key and body is its own request.
    const v = await a.user();
    const other = await a.json("POST", `/api/v1/users/${v.id}/posts`, { token: v.token, body, headers: h });
    expect(other.status).toBe(201);
    expect(other.res.headers.get("idempotent-replayed")).toBeNull();
  });

  test("a key that is not 1-255 printable characters is a 422; GET ignores the header", async () => {
    const a = await app();
    const u = await a.user();
    for (const bad of ["x".repeat(256), "tab\there"]) {
      const r = await a.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { a: 1 }, headers: { "idempotency-key": bad } });
      expect(r.status).toBe(422);
    }
    expect((await a.request("GET", `/api/v1/users/${u.id}`, { token: u.token, headers: { "idempotency-key": "\t" } })).status).toBe(200);
  });

  test("the key is checked on every POST and PATCH route, and on no route of another method", async () => {
    const a = await app();
    const checks = (route: { hooks?: { beforeHandle?: { fn: { name: string } }[] } }) =>
      (route.hooks?.beforeHandle ?? []).filter((h) => h.fn.name === "idempotencyKeyCheck").length;
    const routes = a.app.routes as unknown as { method: string; path: string; hooks?: { beforeHandle?: { fn: { name: string } }[] } }[];
    const writes = routes.filter((r) => r.method === "POST" || r.method === "PATCH");
    expect(writes.length).toBeGreaterThan(5);
    for (const r of writes) expect(checks(r), `${r.method} ${r.path}`).toBe(1);
    const others = routes.filter((r) => r.method !== "POST" && r.method !== "PATCH");
    expect(others.some((r) => r.method === "GET")).toBe(true);
    for (const r of others) expect(checks(r), `${r.method} ${r.path}`).toBe(0);
    // Off the GET route, its key is still ignored, and the write keeps its replay.
    const u = await a.user();
    const h = { "idempotency-key": "moot-1" };
    expect((await a.request("GET", `/api/v1/users/${u.id}`, { token: u.token, headers: h })).status).toBe(200);
    const first = await a.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "x", content: "y" }, headers: h });
    const again = await a.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "x", content: "y" }, headers: h });
    expect([first.status, again.status, again.headers.get("idempotent-replayed")]).toEqual([201, 201, "true"]);
  });

  test("a 429 is not kept: the retry after Retry-After runs, and a refused request leaves no key behind", async () => {
    // 120 a minute: a refused caller may write again within a second.
    const a = await app({ RATE_LIMIT_WRITE_PER_MINUTE: "120" });
    const u = await a.user();
    const path = `/api/v1/users/${u.id}/preferences`;
    const h = { "idempotency-key": "limited-1" };
    // Spend the allowance without a key, then send the keyed request.
    for (let i = 0; i < 500 && (await a.request("PATCH", path, { token: u.token, body: { n: i } })).status === 200; i++);
    const refused = await a.request("PATCH", path, { token: u.token, body: { n: 9 }, headers: h });
    expect(refused.status).toBe(429);
    const wait = Number(refused.headers.get("retry-after"));
    expect(wait).toBeGreaterThan(0);
    const kept = () => a.deps.database.client.execute({ sql: "select count(*) as n from idempotency_keys where key = ?", args: ["limited-1"] });
    expect((await kept()).rows[0]!.n).toBe(0);
    await Bun.sleep(wait * 1000);
    const retry = await a.request("PATCH", path, { token: u.token, body: { n: 9 }, headers: h });
    expect(retry.status).toBe(200);
    expect(retry.headers.get("idempotent-replayed")).toBeNull();
    expect((await kept()).rows[0]!.n).toBe(1);
  });

  test("login and logout run every time whatever the key: no token is replayed, none is stored", async () => {
    const a = await app();
    const u = await a.user("idem-login@example.com", "first-password");
    const h = { "idempotency-key": "login-1" };
    const login = () => a.request("POST", "/api/v1/auth/login", { body: { email: "idem-login@example.com", password: "first-password" }, headers: h });
    const first = await login();
    expect(first.status).toBe(200);
    expect((await a.request("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { password: "second-password" } })).status).toBe(200);
    const again = await login();
    expect(again.status).toBe(401);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    const rows = await a.deps.database.client.execute({ sql: "select count(*) as n from idempotency_keys where key = ?", args: ["login-1"] });
    expect(rows.rows[0]!.n).toBe(0);
  });

  test("a retry while the first request still runs is a 409", async () => {
    const a = await app();
    const u = await a.user();
    const h = { "idempotency-key": "slow-1" };
    const body = { title: "t", content: "c" };
    // Two at once: one of them runs, the other finds the key taken and running (or, if the first already
    // finished, gets the replay); never two posts.
    const [r1, r2] = await Promise.all([
      a.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body, headers: h }),
      a.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body, headers: h }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect(statuses[0]).toBe(201);
    expect([201, 409]).toContain(statuses[1]!);
    if (statuses[1] === 409) expect((r1.status === 409 ? r1 : r2).headers.get("retry-after")).toBe("1");
    const page = await a.json("GET", `/api/v1/users/${u.id}/posts`, { token: u.token });
    expect(page.body.total).toBe(1);
  });

  test("replayed from another instance, after the instance's Redis lost its data", async () => {
    redis = await startPrivateRedis();
    const dir = tempDir("idem-");
    const env = { REDIS_URL: redis.url };
    const a = await app(env, dir);
    const b = await app(env, dir);
    const u = await a.user();
    const h = { "idempotency-key": "cross-1" };
    const first = await a.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "x", content: "y" }, headers: h });
    expect(first.status).toBe(201);
    await redis.wipe();
    const retry = await b.request("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "x", content: "y" }, headers: h });
    expect(retry.status).toBe(201);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(await retry.json()).toEqual(await first.json());
    expect((await b.json("GET", `/api/v1/users/${u.id}/posts`, { token: u.token })).body.total).toBe(1);
  }, 30_000);
});
