// Rate limits for every caller: GCRA in process and in one Redis Lua call, reads decided locally and
// reconciled, IETF headers, login per account and per IP, registrations per IP, fail-open, the hashing bound.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "redis";
import { gcra, KeyTimes, MAX_KEYS, MemoryRateLimiter, RedisRateLimiter, type RatePolicy } from "../src/platform/http/rate-limit.ts";
import { ratePolicies } from "../src/platform/http/rate-limits.ts";
import { clientKeyOf, clientOfAddress, rememberSocketAddress } from "../src/platform/http/client-ip.ts";
import { WorkGate } from "../src/platform/http/work-gate.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import type { Redis } from "../src/platform/redis.ts";
import { dropPrefix, makeApp, REDIS_URL, serveApp, tempDir, type TestApp, testPrefix, TEST_TIMEOUT_MS, WIRINGS } from "./helpers.ts";
import { rmSync } from "node:fs";
import { fastAnswers } from "./support/fast-parity.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const logger = createLogger("silent", {});
const three: RatePolicy = { name: "t", limit: 3, windowSeconds: 60 };
const apps: TestApp[] = [];
const clients: Redis[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const c of clients) await c.quit().catch(() => {});
});
async function app(env: Record<string, string>) {
  const a = await makeApp(env);
  apps.push(a);
  return a;
}
async function redis(): Promise<Redis> {
  const c = createClient({ url: REDIS_URL }) as unknown as Redis;
  await c.connect();
  clients.push(c);
  return c;
}
const prefix = () => testPrefix();

describe("GCRA", () => {
  test("a burst of the limit, then one request per interval; a refusal consumes nothing", () => {
    let tat = 0;
    const now = 1_000_000;
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = gcra(tat, now, three);
      tat = r.tat;
      seen.push([r.decision.allowed, r.decision.remaining, r.decision.retryAfterSeconds]);
    }
    expect(seen).toEqual([[true, 2, 0], [true, 1, 0], [true, 0, 0], [false, 0, 20]]);
    expect(gcra(tat, now + 20_000, three).decision.allowed).toBe(true);
  });

  test("in process: per key", async () => {
    const m = new MemoryRateLimiter();
    for (let i = 0; i < 3; i++) expect(m.local("a", three).allowed).toBe(true);
    expect(m.local("a", three).allowed).toBe(false);
    expect(m.local("b", three).allowed).toBe(true);
    expect(m.stats().limited).toBe(1);
  });
});

describe("bounded key stores", () => {
  test("a full store makes room by turning its generations: expired entries go, keys in use stay, memory stays bounded", () => {
    const now = 1_000_000;
    const store = new KeyTimes(1_000, () => now);
    for (let i = 0; i < 10_000; i++) {
      // Arrival times not after now: limits that no longer hold anything.
      store.put(`k${i}`, now - i);
      expect(store.size).toBeLessThanOrEqual(1_000);
    }
    // A generation (half the bound) turns once per 500 new keys.
    expect(store.turns).toBe(Math.floor((10_000 - 1) / 500));
    expect(store.dropped).toBe(0);
    expect(store.get("k9999")).toBe(now - 9_999);
    expect(store.get("k0")).toBeUndefined();

    const used = new KeyTimes(1_000, () => now);
    for (let i = 0; i < 10_000; i++) {
      used.put(`k${i}`, now);
      // A key in use is written again now and then (every allowed request writes it).
      if (i % 100 === 0) used.put("busy", now + i);
    }
    expect(used.get("busy")).toBe(now + 9_900);
  });

  test("an entry whose limit still holds outlives any number of new keys; beyond a quarter of the bound, those closest to expiry go, counted", () => {
    const now = 1_000_000;
    const store = new KeyTimes(1_000, () => now);
    // A client refused for the next hour, and never written again (a refusal writes nothing).
    store.put("refused", now + 3_600_000);
    for (let i = 0; i < 10_000; i++) {
      store.put(`k${i}`, now + 60_000 + i);
      expect(store.size).toBeLessThanOrEqual(1_000);
    }
    expect(store.get("refused")).toBe(now + 3_600_000);
    // The newest keys, furthest from expiry, are there; the oldest went, and each was counted.
    expect(store.get("k9999")).toBe(now + 60_000 + 9_999);
    expect(store.get("k0")).toBeUndefined();
    expect(store.dropped).toBe(10_001 - store.size);
    // Each turn comes after at least a quarter of the bound of new keys.
    expect(store.turns).toBeLessThanOrEqual(10_000 / 250);
  });

  // The policies of the two flood tests: the defaults' shape, with limits small enough to use up in a test.
  const floodPolicies = () =>
    ratePolicies({
      RATE_LIMIT_READ_PER_MINUTE: 600,
      RATE_LIMIT_WRITE_PER_MINUTE: 60,
      RATE_LIMIT_LOGIN_PER_MINUTE: 10,
      RATE_LIMIT_LOGIN_IP_PER_MINUTE: 30,
      RATE_LIMIT_REGISTER_PER_HOUR: 20,
    });

  test("a client's used-up registrations stay used up through a flood of other clients' keys (no Redis)", () => {
    const policies = floodPolicies();
    const m = new MemoryRateLimiter();
    const me = "register:198.51.100.7";
    const first = [];
    for (let i = 0; i < 21; i++) first.push(m.local(me, policies.register!).allowed);
    expect(first).toEqual([...new Array(20).fill(true), false]);
    // One anonymous reader per /64, more than the store holds; the client tries again now and then, refused.
    const flood = MAX_KEYS + 20_000;
    const retries = [];
    for (let i = 0; i < flood; i++) {
      m.local(`read:ip:2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, policies.read!);
      if (i % 10_000 === 0) retries.push(m.local(me, policies.register!).allowed);
    }
    expect(retries.every((allowed) => !allowed)).toBe(true);
    expect(m.local(me, policies.register!).allowed).toBe(false);
    expect(m.state.keys.size).toBeLessThanOrEqual(MAX_KEYS);
    expect(m.state.keys.turns).toBeGreaterThanOrEqual(2);
  });

  test("a login lock-out outlives a flood of anonymous keys, and memory stays bounded (no Redis)", () => {
    const policies = floodPolicies();
    const m = new MemoryRateLimiter();
    const locked = "login:victim@example.com|203.0.113.66";
    for (let i = 0; i < 10; i++) expect(m.local(locked, policies.login!).allowed).toBe(true);
    expect(m.local(locked, policies.login!).allowed).toBe(false);
    // One new client per request, more than the store holds.
    const flood = MAX_KEYS + 20_000;
    for (let i = 0; i < flood; i++) m.local(`register:2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, policies.register!);
    expect(m.local(locked, policies.login!).allowed).toBe(false);
    expect(m.state.keys.size).toBeLessThanOrEqual(MAX_KEYS);
    expect(m.state.keys.turns).toBeGreaterThanOrEqual(2);
    expect(m.stats().dropped).toBe(flood - m.state.keys.size);
    expect(m.state.apart.dropped).toBe(0);
  });

  test("an attempt given back leaves no entry when nothing else is counted", async () => {
    const m = new MemoryRateLimiter();
    const login: RatePolicy = { name: "login", limit: 3, windowSeconds: 60, apart: true };
    m.local("once", login);
    await m.forgive("once", login);
    expect(m.state.apart.get("once")).toBeUndefined();
    m.local("twice", login);
    m.local("twice", login);
    await m.forgive("twice", login);
    expect(m.state.apart.get("twice")).toBeGreaterThan(Date.now());
  });
});

describe("client addresses", () => {
  test("IPv4 as dotted decimal, IPv4-mapped and NAT64 IPv6 as IPv4, IPv6 by its /64 in one spelling", () => {
    const cases: [string, string | undefined][] = [
      ["192.0.2.1", "192.0.2.1"],
      ["::ffff:192.0.2.1", "192.0.2.1"],
      ["::FFFF:c000:0201", "192.0.2.1"],
      ["0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1"],
      // NAT64 (RFC 6052's well-known prefix): the IPv4 client behind the translator, not one /64 for all of them.
      ["64:ff9b::192.0.2.1", "192.0.2.1"],
      ["64:FF9B::c000:201", "192.0.2.1"],
      ["64:ff9b::1.2.3.4", "1.2.3.4"],
      ["64:ff9b:1::1.2.3.4", "64:ff9b:1:0::/64"],
      ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
      ["2001:db8:1:2::17", "2001:db8:1:2::/64"],
      ["2001:0DB8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
      ["2001:db8:1:2:3:4:5.6.7.8", "2001:db8:1:2::/64"],
      ["2001:db8::", "2001:db8:0:0::/64"],
      ["2001:db8:1:3::1", "2001:db8:1:3::/64"],
      ["::1", "0:0:0:0::/64"],
      ["fe80::1%eth0", "fe80:0:0:0::/64"],
      ["1.2.3", undefined],
      ["256.1.1.1", undefined],
      ["01.2.3.4", undefined],
      ["2001:db8::1::2", undefined],
      ["2001:db8:1:2:3:4:5:6:7", undefined],
      ["1:2:3:4:5:6:7:8::", undefined],
      ["2001:db8:00001::1", undefined],
      ["1.2.3.4::", undefined],
      ["unknown", undefined],
      ["", undefined],
    ];
    expect(cases.map(([text]) => [text, clientOfAddress(text)])).toEqual(cases);
  });

  test("from a trusted header that lists several addresses, the last one (the proxy's), never one the client wrote before it", () => {
    const from = (header: Record<string, string>) => {
      const request = new Request("http://localhost/", { headers: header });
      rememberSocketAddress(request, "fdaa::99");
      return clientKeyOf(request, "x-forwarded-for");
    };
    expect(from({ "x-forwarded-for": "6.6.6.6, 1.2.3.4" })).toBe("1.2.3.4");
    expect(from({ "x-forwarded-for": "6.6.6.6,2001:db8:1:2::5" })).toBe("2001:db8:1:2::/64");
    expect(from({ "x-forwarded-for": "1.2.3.4" })).toBe("1.2.3.4");
    // No address where the proxy's should be: the socket's, never the client's.
    expect(from({ "x-forwarded-for": "6.6.6.6, garbage" })).toBe("fdaa:0:0:0::/64");
    expect(from({ "x-forwarded-for": "6.6.6.6," })).toBe("fdaa:0:0:0::/64");
    expect(from({})).toBe("fdaa:0:0:0::/64");
  });

  test("a proxy's entry with a port is its address, IPv4 (a.b.c.d:port) as IPv6 ([addr]:port); anything else is the socket's", () => {
    const from = (entry: string) => {
      const request = new Request("http://localhost/", { headers: { "x-forwarded-for": `6.6.6.6, ${entry}` } });
      rememberSocketAddress(request, "fdaa::99");
      return clientKeyOf(request, "x-forwarded-for");
    };
    const socket = "fdaa:0:0:0::/64";
    const cases: [string, string][] = [
      ["1.2.3.4:443", "1.2.3.4"],
      ["5.6.7.8:65535", "5.6.7.8"],
      ["[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"],
      ["[2001:db8:1:2::1]", "2001:db8:1:2::/64"],
      ["[::ffff:192.0.2.9]:80", "192.0.2.9"],
      // Without brackets the last group is part of the address, not a port.
      ["2001:db8:1:2::1:443", "2001:db8:1:2::/64"],
      ["1.2.3.4:65536", socket],
      ["1.2.3.4:", socket],
      ["256.1.1.1:80", socket],
      ["[1.2.3.4]:80", socket],
      ["[2001:db8::1]:", socket],
      ["unknown", socket],
      ["unknown:80", socket],
      ["garbage", socket],
    ];
    expect(cases.map(([entry]) => [entry, from(entry)])).toEqual(cases);
  });

  test("one /64 has one quota, whichever of its addresses a request comes from; another /64 has its own", async () => {
    const t = await app({ RATE_LIMIT_REGISTER_PER_HOUR: "2", CLIENT_IP_HEADER: "fly-client-ip" });
    const reg = (ip: string) => t.json("POST", "/api/v1/users", { body: {}, headers: { "fly-client-ip": ip } });
    const from = ["2001:db8:1:2::1", "2001:DB8:1:2:0:0:0:2", "2001:db8:1:2::3", "2001:db8:1:3::1"];
    const statuses = [];
    for (const ip of from) statuses.push((await reg(ip)).status);
    expect(statuses).toEqual([422, 422, 429, 422]);
    expect([(await reg("::ffff:192.0.2.9")).status, (await reg("192.0.2.9")).status, (await reg("192.0.2.9")).status]).toEqual([422, 422, 429]);
  });

  test("a stranger rotating addresses in its /64 cannot lock the owner out", async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: "3", CLIENT_IP_HEADER: "fly-client-ip" });
    const u = await t.user();
    const attempt = (password: string, ip: string) => t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password }, headers: { "fly-client-ip": ip } });
    const s = [];
    for (let i = 1; i <= 12; i++) s.push((await attempt("wrong-guess", `2001:db8:6:6::${i.toString(16)}`)).status);
    expect(s).toEqual([401, 401, 401, ...new Array(9).fill(429)]);
    expect((await attempt("correct-horse", "2001:db8:1:1::1")).status).toBe(200);
  });
});

describe("signed-in callers are limited per user", () => {
  test("all of a user's sessions share one quota; a revoked token does not spend it", async () => {
    const t = await app({ RATE_LIMIT_WRITE_PER_MINUTE: "6" });
    const u = await t.user();
    const tokens = [u.token, await t.login(u.email, "correct-horse"), await t.login(u.email, "correct-horse")];
    const other = await t.user();
    const post = (token: string) => t.json("POST", `/api/v1/users/${u.id}/posts`, { token, body: { title: "a", content: "b" } });
    const s = [];
    for (const token of [...tokens, tokens[0]!]) s.push((await post(token)).status);
    expect(s).toEqual([201, 201, 201, 201]);
    // The fifth write of the minute: the logout.
    expect((await t.request("POST", "/api/v1/auth/logout", { token: tokens[0] })).status).toBe(204);
    const revoked = [];
    for (let i = 0; i < 5; i++) revoked.push((await post(tokens[0]!)).status);
    expect(revoked).toEqual([401, 401, 401, 401, 401]);
    // A revoked token counts as its client, not as its user: the user's sixth write of the minute is still there.
    expect([(await post(tokens[1]!)).status, (await post(tokens[2]!)).status]).toEqual([201, 429]);
    expect((await t.json("POST", `/api/v1/users/${other.id}/posts`, { token: other.token, body: { title: "a", content: "b" } })).status).toBe(201);
  });

  test("the fast reads and writes key by user too", async () => {
    const inst = await serveApp({ RATE_LIMIT_READ_PER_MINUTE: "3", RATE_LIMIT_WRITE_PER_MINUTE: "3", METRICS_ENABLED: "true", METRICS_PORT: "0" });
    try {
      const post = async (path: string, body: unknown) =>
        (await fetch(`${inst.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<Record<string, any>>;
      const email = `fast-user-${crypto.randomUUID().slice(0, 6)}@example.com`;
      const { id } = await post("/api/v1/users", { email, password: "correct-horse", full_name: "F" });
      const tokens: string[] = [];
      for (let i = 0; i < 3; i++) tokens.push((await post("/api/v1/auth/login", { email, password: "correct-horse" })).access_token);
      const fast = async () => fastAnswers(await (await fetch(inst.metricsUrl!)).text());
      const before = await fast();
      const call = async (method: string, path: string, token: string, body?: string) => {
        const headers: Record<string, string> = { authorization: `Bearer ${token}` };
        if (body !== undefined) headers["content-type"] = "application/json";
        const r = await fetch(`${inst.url}${path}`, { method, headers, body });
        await r.arrayBuffer();
        return r.status;
      };
      const reads = [];
      for (const token of [...tokens, tokens[0]!]) reads.push(await call("GET", `/api/v1/users/${id}`, token));
      const writes = [];
      for (const token of [...tokens, tokens[0]!]) writes.push(await call("PATCH", `/api/v1/users/${id}/preferences`, token, '{"theme":"dark"}'));
      expect({ reads, writes }).toEqual({ reads: [200, 200, 200, 429], writes: [200, 200, 200, 429] });
      // Answered in front of the app, all but the refusals (which the app writes).
      expect((await fast()) - before).toBeGreaterThanOrEqual(5);
    } finally {
      await inst.stop();
    }
  });
});

describe.each(WIRINGS)("a revoked token spends its client's quota, not its user's, over $wiring", ({ env, redis }) => {
  test("after logout everywhere, its holder elsewhere cannot use up the owner's reads and writes, on any path", async () => {
    const inst = await serveApp({ ...env, RATE_LIMIT_READ_PER_MINUTE: "3", RATE_LIMIT_WRITE_PER_MINUTE: "3", CLIENT_IP_HEADER: "fly-client-ip" });
    try {
      const call = async (method: string, path: string, ip: string, token?: string, body?: unknown) => {
        const headers: Record<string, string> = { "fly-client-ip": ip };
        if (token !== undefined) headers.authorization = `Bearer ${token}`;
        if (body !== undefined) headers["content-type"] = "application/json";
        const r = await fetch(`${inst.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await r.text();
        return { status: r.status, body: text === "" ? null : JSON.parse(text) };
      };
      const owner = "192.0.2.10";
      const email = `revoked-${crypto.randomUUID().slice(0, 6)}@example.com`;
      const { id } = (await call("POST", "/api/v1/users", owner, undefined, { email, password: "correct-horse", full_name: "R" })).body;
      const login = async () => (await call("POST", "/api/v1/auth/login", owner, undefined, { email, password: "correct-horse" })).body.access_token as string;
      const stolen = await login();
      // The user's first write of the minute.
      expect((await call("POST", "/api/v1/auth/logout", owner, stolen, { all: true })).status).toBe(204);
      const fresh = await login();
      // The stolen token from elsewhere, on paths no auth rule guards (unknown, a method not allowed, the document).
      const thief = "203.0.113.7";
      const spent = [];
      for (const [method, path] of [["POST", "/api/v1/nope"], ["POST", "/api/v1/nope"], ["PUT", "/api/v1/auth/login"], ["GET", "/swagger/json"], ["GET", "/nope"], ["GET", "/nope"]] as const) {
        spent.push((await call(method, path, thief, stolen, method === "GET" ? undefined : {})).status);
      }
      // Its client's quota: three writes, then three reads, then refusals.
      expect(spent).toEqual([404, 404, 405, 200, 404, 404]);
      expect((await call("GET", "/nope", thief, stolen)).status).toBe(429);
      // The owner still has two writes and three reads of the minute.
      expect((await call("POST", `/api/v1/users/${id}/posts`, owner, fresh, { title: "a", content: "b" })).status).toBe(201);
      expect((await call("PATCH", `/api/v1/users/${id}/preferences`, owner, fresh, { theme: "dark" })).status).toBe(200);
      const reads = [];
      for (let i = 0; i < 4; i++) reads.push((await call("GET", i % 2 === 0 ? "/api/v1/users/me" : `/api/v1/users/${id}`, owner, fresh)).status);
      expect(reads).toEqual([200, 200, 200, 429]);
    } finally {
      if (redis && inst.deps.redis?.isReady) await dropPrefix(inst.deps.redis, inst.deps.config.REDIS_PREFIX);
      await inst.stop();
    }
  });
});

describe("a token revoked on another instance", () => {
  test("spends its client's write quota on this one, not its user's, though this one never saw the logout", async () => {
    const dir = tempDir("rl-revoked-");
    const env = { REDIS_URL, REDIS_PREFIX: testPrefix(), JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false", RATE_LIMIT_WRITE_PER_MINUTE: "3", CLIENT_IP_HEADER: "fly-client-ip" };
    const a = await serveApp({ ...env, INSTANCE_ID: "rl-revoked-a" }, dir);
    const b = await serveApp({ ...env, INSTANCE_ID: "rl-revoked-b" }, dir);
    try {
      const call = async (base: string, method: string, path: string, ip: string, token?: string, body?: unknown) => {
        const headers: Record<string, string> = { "fly-client-ip": ip, "content-type": "application/json" };
        if (token !== undefined) headers.authorization = `Bearer ${token}`;
        const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await r.text();
        return { status: r.status, body: text === "" ? null : JSON.parse(text) };
      };
      const owner = "192.0.2.20";
      const email = `revoked-b-${crypto.randomUUID().slice(0, 6)}@example.com`;
      const { id } = (await call(a.url, "POST", "/api/v1/users", owner, undefined, { email, password: "correct-horse", full_name: "R" })).body;
      const login = async () => (await call(a.url, "POST", "/api/v1/auth/login", owner, undefined, { email, password: "correct-horse" })).body.access_token as string;
      const stolen = await login();
      const fresh = await login();
      // The user's first write of the minute, on a: the stolen token's own session ends.
      expect((await call(a.url, "POST", "/api/v1/auth/logout", owner, stolen)).status).toBe(204);
      const spent = [];
      for (let i = 0; i < 4; i++) spent.push((await call(b.url, "POST", "/api/v1/nope", "203.0.113.8", stolen, {})).status);
      expect(spent).toEqual([404, 404, 404, 429]);
      const owners = [];
      for (let i = 0; i < 3; i++) owners.push((await call(a.url, "POST", `/api/v1/users/${id}/posts`, owner, fresh, { title: "a", content: "b" })).status);
      expect(owners).toEqual([201, 201, 429]);
    } finally {
      if (a.deps.redis?.isReady) await dropPrefix(a.deps.redis, env.REDIS_PREFIX);
      await a.stop();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Redis", () => {
  test("shared decisions in one Lua call, with the real Retry-After (not 1)", async () => {
    const l = new RedisRateLimiter(await redis(), { prefix: prefix(), logger, timeoutMs: 1_000 });
    const d = [];
    for (let i = 0; i < 4; i++) d.push(await l.shared("k", three));
    expect(d.map((x) => x.allowed)).toEqual([true, true, true, false]);
    expect(d[3]!.retryAfterSeconds).toBeGreaterThanOrEqual(19);
    expect(d[3]!.retryAfterSeconds).toBeLessThanOrEqual(20);
    await l.forgive("k", three);
    expect((await l.shared("k", three)).allowed).toBe(true);
    await l.close();
  });

  test("local decisions reach the other instances at the next reconciliation", async () => {
    const p = prefix();
    const a = new RedisRateLimiter(await redis(), { prefix: p, logger, timeoutMs: 1_000, reconcileMs: 60_000 });
    const b = new RedisRateLimiter(await redis(), { prefix: p, logger, timeoutMs: 1_000, reconcileMs: 60_000 });
    for (let i = 0; i < 3; i++) expect(a.local("k", three).allowed).toBe(true);
    await a.reconcile();
    // b has not seen the key yet: it decides alone once (the precision reconciliation costs), then learns.
    expect(b.local("k", three).allowed).toBe(true);
    await b.reconcile();
    expect(b.local("k", three).allowed).toBe(false);
    expect((await a.shared("k", three)).allowed).toBe(false);
    await a.close();
    await b.close();
  });

  test("unreachable: fails open to this instance's own limits, counted", async () => {
    const c = createClient({ url: REDIS_URL }) as unknown as Redis;
    await c.connect();
    await c.quit();
    const l = new RedisRateLimiter(c, { prefix: prefix(), logger, timeoutMs: 200 });
    const d = [];
    for (let i = 0; i < 4; i++) d.push((await l.shared("k", three)).allowed);
    expect(d).toEqual([true, true, true, false]);
    expect(l.stats().store_errors).toBe(4);
    await l.close();
  });
});

describe("over HTTP", () => {
  test("reads per token: RateLimit on successes, then 429 problem with Retry-After and both IETF headers", async () => {
    const t = await app({ RATE_LIMIT_READ_PER_MINUTE: "5" });
    const u = await t.user();
    const other = await t.user();
    for (let i = 0; i < 5; i++) {
      const r = await t.request("GET", "/api/v1/users/me", { token: u.token });
      expect(r.status).toBe(200);
      expect(r.headers.get("ratelimit")).toBe(`"read";r=${4 - i};t=${(i + 1) * 12}`);
    }
    const r = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(r.status).toBe(429);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect(r.headers.get("retry-after")).toBe("12");
    expect(r.headers.get("ratelimit-policy")).toBe('"read";q=5;w=60');
    expect(r.headers.get("ratelimit")).toBe('"read";r=0;t=60');
    expect((await r.json()).status).toBe(429);
    expect((await t.request("GET", "/api/v1/users/me", { token: other.token })).status).toBe(200);
    expect((await t.request("GET", "/health/live")).status).toBe(200);
  });

  test("anonymous callers are keyed by client IP, from CLIENT_IP_HEADER only when it is configured", async () => {
    const t = await app({ RATE_LIMIT_READ_PER_MINUTE: "2", CLIENT_IP_HEADER: "x-client-ip" });
    const from = (ip: string) => t.request("GET", "/api/v1/users/me", { headers: { "x-client-ip": ip } });
    expect([(await from("10.0.0.1")).status, (await from("10.0.0.1")).status, (await from("10.0.0.1")).status]).toEqual([401, 401, 429]);
    expect((await from("10.0.0.2")).status).toBe(401);
    const plain = await app({ RATE_LIMIT_READ_PER_MINUTE: "2" });
    const spoof = (ip: string) => plain.request("GET", "/api/v1/users/me", { headers: { "x-client-ip": ip } });
    expect([(await spoof("1.1.1.1")).status, (await spoof("2.2.2.2")).status, (await spoof("3.3.3.3")).status]).toEqual([401, 401, 429]);
  });

  test("writes have their own class", async () => {
    const t = await app({ RATE_LIMIT_WRITE_PER_MINUTE: "2" });
    const u = await t.user();
    const post = () => t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "a", content: "b" } });
    expect([(await post()).status, (await post()).status, (await post()).status]).toEqual([201, 201, 429]);
    expect((await t.request("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
  });

  test("login: spraying many accounts from one IP meets the per-IP limit", async () => {
    const t = await app({ RATE_LIMIT_LOGIN_IP_PER_MINUTE: "3", CLIENT_IP_HEADER: "x-client-ip" });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const r = await t.json("POST", "/api/v1/auth/login", { body: { email: `spray${i}@example.com`, password: "guess-guess" }, headers: { "x-client-ip": "10.9.9.9" } });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test("login: a stranger's wrong guesses do not lock the owner out from elsewhere", async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: "3", CLIENT_IP_HEADER: "x-client-ip" });
    const u = await t.user();
    const attempt = (password: string, ip: string) => t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password }, headers: { "x-client-ip": ip } });
    const s = [];
    for (let i = 0; i < 4; i++) s.push((await attempt("wrong-guess", "10.6.6.6")).status);
    expect(s).toEqual([401, 401, 401, 429]);
    expect((await attempt("correct-horse", "10.6.6.6")).status).toBe(429);
    expect((await attempt("correct-horse", "10.1.1.1")).status).toBe(200);
  });

  test("registrations per IP per hour", async () => {
    const t = await app({ RATE_LIMIT_REGISTER_PER_HOUR: "2" });
    const reg = (i: number) => t.json("POST", "/api/v1/users", { body: { email: `reg${i}-${crypto.randomUUID().slice(0, 6)}@example.com`, password: "correct-horse", full_name: "R" } });
    const r = [await reg(1), await reg(2), await reg(3)];
    expect(r.map((x) => x.status)).toEqual([201, 201, 429]);
    expect(Number(r[2]!.res.headers.get("retry-after"))).toBeGreaterThan(1000);
    expect(r[2]!.res.headers.get("ratelimit-policy")).toBe('"register";q=2;w=3600');
  });

  test("0 turns a class off", async () => {
    const t = await app({ RATE_LIMIT_READ_PER_MINUTE: "0" });
    const r = await t.request("GET", "/api/v1/users/me");
    expect(r.status).toBe(401);
    expect(r.headers.get("ratelimit")).toBeNull();
  });
});

describe("password hashing at once", () => {
  test("beyond concurrency + queue: 503 with Retry-After at once", async () => {
    const g = new WorkGate(1, 1);
    let release!: () => void;
    const first = g.run(() => new Promise<number>((r) => (release = () => r(1))));
    const second = g.run(async () => 2);
    const third = g.run(async () => 3).catch((e) => e);
    const refused = await third;
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    release();
    expect(await first).toBe(1);
    expect(await second).toBe(2);
    expect(g.busy).toBe(0);
  });

  test("concurrent logins beyond the bound answer 503, the rest are served", async () => {
    const t = await app({ PASSWORD_HASH_CONCURRENCY: "1", PASSWORD_HASH_QUEUE: "1" });
    const u = await t.user();
    const rs = await Promise.all(
      Array.from({ length: 8 }, () => t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password: "correct-horse" } })),
    );
    const statuses = rs.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
    for (const r of rs.filter((r) => r.status === 503)) {
      expect(r.res.headers.get("retry-after")).toBe("1");
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
    }
  });
});

describe("a login the hashing bound refuses", () => {
  test("gives its attempt back: the owner's 503s do not move toward a lock-out", async () => {
    const t = await app({ PASSWORD_HASH_CONCURRENCY: "1", PASSWORD_HASH_QUEUE: "0", RATE_LIMIT_LOGIN_PER_MINUTE: "3" });
    const u = await t.user();
    const attempt = (password: string) => t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password } });
    let release!: () => void;
    const held = t.deps.hashing.run(() => new Promise<void>((r) => (release = r)));
    const refused = [];
    for (let i = 0; i < 6; i++) refused.push((await attempt("correct-horse")).status);
    expect(refused).toEqual([503, 503, 503, 503, 503, 503]);
    release();
    await held;
    const s = [];
    for (let i = 0; i < 4; i++) s.push((await attempt("wrong-guess")).status);
    expect(s).toEqual([401, 401, 401, 429]);
  });
});

describe("the welcome mail is no relay", () => {
  test("a name that a mail client could render as a link is not put in it", async () => {
    const { greetingName } = await import("../src/modules/users/jobs.ts");
    expect(greetingName("Ann-Marie O'Neil")).toBe("Ann-Marie O'Neil");
    expect(greetingName("Zoë Ñúñez")).toBe("Zoë Ñúñez");
    for (const name of ["visit evil.com", "http://x", "a@b", "see evil dot com/x", "www·evil·com:80", "12345", "   ", "<a href=x>", ""]) {
      expect({ name, greeting: greetingName(name) }).toEqual({ name, greeting: "there" });
    }
  });
});

describe("a trailing slash is the same route", () => {
  test("registrations and logins through /users/ and /auth/login/ are limited, and a login there is not replayed", async () => {
    const t = await makeApp({ RATE_LIMIT_REGISTER_PER_HOUR: "2", RATE_LIMIT_LOGIN_IP_PER_MINUTE: "2" });
    try {
      const reg = (i: number) => t.request("POST", "/api/v1/users/", { body: { email: `slash-${i}@example.com`, password: "password-1", full_name: "S" } });
      expect([(await reg(1)).status, (await reg(2)).status, (await reg(3)).status]).toEqual([201, 201, 429]);
      const login = () => t.request("POST", "/api/v1/auth/login/", { body: { email: "slash-1@example.com", password: "password-1" }, headers: { "idempotency-key": "slash-login" } });
      const first = await login();
      expect(first.status).toBe(200);
      const second = await login();
      expect(second.headers.get("idempotent-replayed")).toBeNull();
      expect((await login()).status).toBe(429);
    } finally {
      await t.close();
    }
  });
});
