// The cache as a client and an operator see it: x-cache, /cache/stats, tag invalidation of every page size,
// two instances on one database and one Redis, Redis going away and coming back, warming, the no-Redis mode.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { userDetailParts } from "../src/main/features.ts";
import { warmCache } from "../src/modules/users/warm.ts";
import { makeApp, REDIS_URL, tempDir, type TestApp, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { tcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "cache-admin@example.com", password: "admin-password-1" };
const opened: TestApp[] = [];
const proxies: TcpProxy[] = [];
const dirs: string[] = [];

async function open(overrides: Record<string, string | undefined> = {}, dir?: string) {
  const t = await makeApp({ REDIS_URL, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ...overrides }, dir);
  opened.push(t);
  return t;
}

afterAll(async () => {
  for (const t of opened.reverse()) await t.close();
  for (const p of proxies) p.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const xcache = (r: { res: Response }) => r.res.headers.get("x-cache");

describe("cached reads over HTTP", () => {
  let t: TestApp;
  let u: { id: number; token: string };
  beforeAll(async () => {
    t = await open();
    u = await t.user();
  });

  test("a detail read is a miss, then hit-l1, with the same body and a request id", async () => {
    const first = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(first.status).toBe(200);
    expect(xcache(first)).toBe("miss");
    const second = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(xcache(second)).toBe("hit-l1");
    expect(second.body).toEqual(first.body);
    expect(second.res.headers.get("content-type")).toContain("application/json");
    expect(second.res.headers.get("x-request-id")).toBeTruthy();
    expect(Object.keys(second.body).sort()).toEqual(["posts", "preferences", "user"]);
  });

  test("a write invalidates posts pages of every size, the detail and the preferences", async () => {
    const sizes = [1, 2, 3, 10, 100];
    await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "one", content: "first" } });
    for (const limit of sizes) {
      await t.json("GET", `/api/v1/users/${u.id}/posts?page=1&limit=${limit}`, { token: u.token });
      const again = await t.json("GET", `/api/v1/users/${u.id}/posts?page=1&limit=${limit}`, { token: u.token });
      expect(xcache(again)).toBe("hit-l1");
      expect(again.body.total).toBe(1);
    }
    await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
    expect(xcache(await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token }))).toBe("hit-l1");

    const created = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "two", content: "second" } });
    expect(created.status).toBe(201);
    for (const limit of sizes) {
      const r = await t.json("GET", `/api/v1/users/${u.id}/posts?page=1&limit=${limit}`, { token: u.token });
      expect(xcache(r)).toBe("miss");
      expect(r.body.total).toBe(2);
      expect(r.body.items[0].title).toBe("two");
    }
    const detail = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(xcache(detail)).toBe("miss");
    expect(detail.body.posts.map((p: { title: string }) => p.title)).toEqual(["two", "one"]);

    await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark" } });
    const prefs = await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
    expect(xcache(prefs)).toBe("miss");
    expect(prefs.body).toEqual({ theme: "dark" });
  });

  test("an unknown user is 404 problem+json, and registering that id later is seen at once", async () => {
    const nextId = u.id + 1;
    for (let i = 0; i < 2; i++) {
      const r = await t.json("GET", `/api/v1/users/${nextId}`, { token: u.token });
      expect(r.status).toBe(404);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
    }
    const v = await t.user();
    expect(v.id).toBe(nextId);
    const r = await t.json("GET", `/api/v1/users/${nextId}`, { token: u.token });
    expect(r.status).toBe(200);
    expect(r.body.user.id).toBe(nextId);
  });

  test("GET /cache/stats is admin only and has exactly the contract's shape", async () => {
    expect((await t.json("GET", "/cache/stats")).status).toBe(401);
    expect((await t.json("GET", "/cache/stats", { token: u.token })).status).toBe(403);
    const token = await t.login(ADMIN.email, ADMIN.password);
    const r = await t.json("GET", "/cache/stats", { token });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(["bus", "l1", "l2"]);
    expect(Object.keys(r.body.l1).sort()).toEqual(["evictions", "hit_ratio", "hits", "max_items", "misses", "size"]);
    expect(Object.keys(r.body.l2).sort()).toEqual(["available", "errors", "hits", "misses"]);
    expect(Object.keys(r.body.bus).sort()).toEqual(["published", "received"]);
    expect(r.body.l1.hits).toBeGreaterThan(0);
    expect(r.body.l1.size).toBeGreaterThan(0);
    expect(r.body.l1.max_items).toBe(t.config.CACHE_L1_MAX_ITEMS);
    expect(r.body.l1.hit_ratio).toBeGreaterThan(0);
    expect(r.body.l1.hit_ratio).toBeLessThanOrEqual(1);
    expect(r.body.l2.available).toBe(true);
    expect(r.body.bus.published).toBeGreaterThan(0);
  });

  test("with L1 disabled a repeated read is hit-l2", async () => {
    // The L2 asked on every miss (the adaptive policy would skip it on loopback whenever the read is cheaper).
    const t2 = await open({ CACHE_L1_ENABLED: "false", CACHE_L2_POLICY: "always" });
    const v = await t2.user();
    expect(xcache(await t2.json("GET", `/api/v1/users/${v.id}`, { token: v.token }))).toBe("miss");
    // The L2 write after a miss is not awaited by the request.
    const r = await waitUntil(async () => {
      const now = await t2.json("GET", `/api/v1/users/${v.id}`, { token: v.token });
      return xcache(now) === "hit-l2" && now;
    }, { timeoutMs: 5_000, intervalMs: 5 }, "a hit-l2 read");
    expect(xcache(r)).toBe("hit-l2");
    expect(r.body.user.id).toBe(v.id);
  });

  test("with the cache disabled every read is a miss", async () => {
    const t3 = await open({ CACHE_ENABLED: "false" });
    const v = await t3.user();
    await t3.json("GET", `/api/v1/users/${v.id}`, { token: v.token });
    expect(xcache(await t3.json("GET", `/api/v1/users/${v.id}`, { token: v.token }))).toBe("miss");
  });
});

describe("two instances, one database, one Redis", () => {
  test("a read on B, an update on A, and B's next read is fresh within 100 ms", async () => {
    const dir = tempDir("two-");
    dirs.push(dir);
    const prefix = testPrefix("cache2");
    const a = await open({ INSTANCE_ID: "instance-a", REDIS_PREFIX: prefix }, dir);
    const b = await open({ INSTANCE_ID: "instance-b", REDIS_PREFIX: prefix }, dir);
    const u = await a.user();
    const tokenB = await b.login(u.email, "correct-horse");

    await b.json("GET", `/api/v1/users/${u.id}`, { token: tokenB });
    const cached = await b.json("GET", `/api/v1/users/${u.id}`, { token: tokenB });
    expect(xcache(cached)).toBe("hit-l1");
    expect(cached.body.user.full_name).toBe("Test User");

    const patched = await a.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "Renamed On A" } });
    expect(patched.status).toBe(200);
    const patchedAt = performance.now();
    const deadline = patchedAt + 100;
    let seen = "";
    do {
      const r = await b.json("GET", `/api/v1/users/${u.id}`, { token: tokenB });
      seen = r.body.user.full_name;
      if (seen === "Renamed On A") break;
      await Bun.sleep(2);
    } while (performance.now() < deadline);
    console.log(`cache test: B's read fresh ${(performance.now() - patchedAt).toFixed(1)} ms after A's answer (${seen === "Renamed On A" ? "seen" : "not seen"})`);
    expect(seen).toBe("Renamed On A");

    // The same holds for posts and preferences written on A.
    await a.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "from A", content: "x" } });
    let posts = await b.json("GET", `/api/v1/users/${u.id}/posts?limit=3`, { token: tokenB });
    for (let i = 0; i < 20 && posts.body.total !== 1; i++) {
      await Bun.sleep(5);
      posts = await b.json("GET", `/api/v1/users/${u.id}/posts?limit=3`, { token: tokenB });
    }
    expect(posts.body.total).toBe(1);
    const adminB = await b.login(ADMIN.email, ADMIN.password);
    const statsB = await b.json("GET", "/cache/stats", { token: adminB });
    expect(statsB.body.bus.received).toBeGreaterThan(0);
  });
});

describe("Redis unreachable mid-test", () => {
  test("reads and writes still answer 2xx, and L2 comes back by itself", async () => {
    const { hostname, port } = new URL(REDIS_URL);
    const proxy = tcpProxy(hostname, Number(port || 6379));
    proxies.push(proxy);
    const dir = tempDir("proxy-");
    dirs.push(dir);
    const prefix = testPrefix("cacheproxy");
    const t = await open({ REDIS_URL: proxy.url, REDIS_PREFIX: prefix, INSTANCE_ID: "behind-proxy", CACHE_BREAKER_COOLDOWN_MS: "200", CACHE_L2_TIMEOUT_MS: "100" }, dir);
    // A second instance on the same database and Redis that never loses its connection.
    const other = await open({ REDIS_PREFIX: prefix, INSTANCE_ID: "direct" }, dir);
    const u = await t.user();
    const otherToken = await other.login(u.email, "correct-horse");
    await other.json("GET", `/api/v1/users/${u.id}`, { token: otherToken });
    const admin = await t.login(ADMIN.email, ADMIN.password);
    expect((await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token })).status).toBe(200);
    expect((await t.json("GET", "/cache/stats", { token: admin })).body.l2.available).toBe(true);

    proxy.close();
    for (let i = 0; i < 5; i++) {
      const r = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
      expect(r.status).toBe(200);
      expect(r.body.user.id).toBe(u.id);
    }
    const w = await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "While Down" } });
    expect(w.status).toBe(200);
    const afterWrite = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(afterWrite.status).toBe(200);
    expect(afterWrite.body.user.full_name).toBe("While Down");
    expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "t", content: "c" } })).status).toBe(201);
    const down = await t.json("GET", "/cache/stats", { token: admin });
    expect(down.status).toBe(200);
    expect(down.body.l2.available).toBe(false);
    expect(down.body.l2.errors).toBeGreaterThan(0);

    proxy.open();
    // Back by itself: no call from the test reconnects anything, it only reads until L2 and the bus are live.
    const { stats, source } = await waitUntil(async () => {
      await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
      const source = xcache(await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token }));
      const stats = await t.json("GET", "/cache/stats", { token: admin });
      return stats.body.l2.available && source === "hit-l1" && { stats, source };
    }, { timeoutMs: 10_000, intervalMs: 50 }, "L2 and the bus back");
    expect(stats.body.l2.available).toBe(true);
    expect(source).toBe("hit-l1");
    const back = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(back.body.user.full_name).toBe("While Down");
    // The invalidation that could not reach Redis during the outage is delivered once it is back, so the
    // instance that never lost Redis stops serving its copy from before the write.
    const seen = await waitUntil(async () => {
      const name = (await other.json("GET", `/api/v1/users/${u.id}`, { token: otherToken })).body.user.full_name;
      return name === "While Down" && name;
    }, { timeoutMs: 10_000, intervalMs: 50 }, "the other instance to see the write");
    expect(seen).toBe("While Down");
    expect(back.body.posts).toHaveLength(1);
  }, 30_000);
});

describe("no Redis", () => {
  test("L1 alone serves hits; stats say L2 is unavailable", async () => {
    const t = await open({ REDIS_URL: undefined });
    const u = await t.user();
    await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(xcache(await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token }))).toBe("hit-l1");
    await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "Changed" } });
    const r = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(xcache(r)).toBe("miss");
    expect(r.body.user.full_name).toBe("Changed");
    const stats = await t.json("GET", "/cache/stats", { token: await t.login(ADMIN.email, ADMIN.password) });
    expect(stats.body.l2).toEqual({ available: false, hits: 0, misses: 0, errors: 0 });
  });
});

describe("warming", () => {
  test("loads the most recently active users' details so their first read is a hit", async () => {
    const t = await open({ CACHE_WARM_COUNT: "2" });
    const a = await t.user();
    const b = await t.user();
    await t.deps.cache.invalidateTags([`user:${a.id}`, `user:${b.id}`]);
    const result = await warmCache({ ...t.deps, detail: userDetailParts(t.deps.database) });
    expect(result.warmed).toBe(2);
    expect(result.timed_out).toBe(false);
    expect(xcache(await t.json("GET", `/api/v1/users/${b.id}`, { token: b.token }))).toBe("hit-l1");
  });

  test("stops at CACHE_WARM_TIMEOUT_MS when loading hangs", async () => {
    const t = await open({ CACHE_WARM_COUNT: "10", CACHE_WARM_TIMEOUT_MS: "50" });
    const result = await warmCache({ ...t.deps, detail: userDetailParts(t.deps.database) }, { ids: async () => [1, 2, 3], load: () => new Promise(() => {}) });
    expect(result.timed_out).toBe(true);
    expect(result.warmed).toBe(0);
  });
});
