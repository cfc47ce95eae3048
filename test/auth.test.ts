import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHmac } from "node:crypto";
import { signJwt, verifyJwt } from "../src/platform/http/jwt.ts";
import { authenticate, TokenCache } from "../src/platform/http/auth.ts";
import { makeApp, REDIS_URL, tempDir, type TestApp, testPrefix, WIRINGS, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe.each(WIRINGS)("the login and token contract over $wiring", ({ env, redis }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeApp({ ...env, RATE_LIMIT_LOGIN_PER_MINUTE: "5" });
    expect(t.deps.redis !== null).toBe(redis); // wired as the title says
  });
  afterAll(() => t.close());

  describe("POST /api/v1/auth/login", () => {
    test("returns a bearer token that carries user id, admin flag and session id and expires in an hour", async () => {
      const u = await t.user("login-ok@example.com", "password-123");
      const r = await t.json("POST", "/api/v1/auth/login", { body: { email: "LOGIN-OK@example.com", password: "password-123" } });
      expect(r.status).toBe(200);
      expect(r.body.token_type).toBe("bearer");
      expect(r.body.expires_in).toBe(3600);
      const claims = verifyJwt(r.body.access_token, t.config.jwtSecret)!;
      expect(claims.sub).toBe(String(u.id));
      expect(claims.adm).toBe(false);
      expect(claims.exp - claims.iat).toBe(3600);
      const header = JSON.parse(Buffer.from(r.body.access_token.split(".")[0], "base64url").toString());
      expect(header.alg).toBe("HS256");
      const [session] = await t.deps.database.client.execute({ sql: "SELECT user_id, expires_at FROM sessions WHERE id = ?", args: [claims.sid] }).then((x) => x.rows);
      expect(Number(session!.user_id)).toBe(u.id);
    });

    test("a wrong password and an unknown email are the same 401", async () => {
      await t.user("login-bad@example.com", "password-123");
      const wrong = await t.json("POST", "/api/v1/auth/login", { body: { email: "login-bad@example.com", password: "nope-nope" } });
      const unknown = await t.json("POST", "/api/v1/auth/login", { body: { email: "nobody@example.com", password: "nope-nope" } });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(unknown.body.detail).toBe(wrong.body.detail);
      expect(unknown.res.headers.get("content-type")).toBe("application/problem+json");
    });

    test("missing fields are 422, malformed JSON 400", async () => {
      expect((await t.json("POST", "/api/v1/auth/login", { body: { email: "x@example.com" } })).status).toBe(422);
      expect((await t.json("POST", "/api/v1/auth/login", { body: "{nope" })).status).toBe(400);
    });

    test("successful logins are not limited", async () => {
      await t.user("often@example.com", "password-123");
      for (let i = 0; i < 8; i++) {
        expect((await t.json("POST", "/api/v1/auth/login", { body: { email: "often@example.com", password: "password-123" } })).status).toBe(200);
      }
    });

    test("too many failed attempts for one account are 429 with Retry-After, even with the right password", async () => {
      await t.user("limited@example.com", "right-password");
      const body = { email: "limited@example.com", password: "whatever-1" };
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await t.json("POST", "/api/v1/auth/login", { body })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expect((await t.json("POST", "/api/v1/auth/login", { body })).status).toBe(429);
      const r = await t.json("POST", "/api/v1/auth/login", { body: { ...body, password: "right-password" } });
      expect(r.status).toBe(429);
      const retry = Number(r.res.headers.get("retry-after"));
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(60);
    });
  });

  describe("parallel guessing", () => {
    test("20 wrong passwords at once: at most the limit (5) are even checked, the rest are 429", async () => {
      await t.user("parallel@example.com", "right-password");
      const body = { email: "parallel@example.com", password: "guess-guess" };
      const statuses = (await Promise.all(Array.from({ length: 20 }, () => t.json("POST", "/api/v1/auth/login", { body })))).map((r) => r.status);
      expect(statuses.filter((s) => s === 401).length).toBe(5);
      expect(statuses.filter((s) => s === 429).length).toBe(15);
    }, 30_000);
  });

  describe("bearer tokens", () => {
    test("tampered, foreign-key, expired, alg=none and malformed tokens are 401", async () => {
      const u = await t.user();
      const [h, body, sig] = u.token.split(".");
      const claims = JSON.parse(Buffer.from(body!, "base64url").toString());
      const now = Math.floor(Date.now() / 1000);
      const bad = [
        `${h}.${b64({ ...claims, adm: true })}.${sig}`,
        signJwt({ ...claims }, "another-secret-another-secret-0000"),
        signJwt({ ...claims, iat: now - 7200, exp: now - 3600 }, t.config.jwtSecret),
        `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...claims, adm: true })}.`,
        "not-a-token",
        "",
      ];
      for (const token of bad) {
        const r = await t.request("GET", "/api/v1/users/me", { headers: { authorization: `Bearer ${token}` } });
        expect(r.status).toBe(401);
      }
      expect((await t.request("GET", "/api/v1/users/me", { headers: { authorization: `Basic ${u.token}` } })).status).toBe(401);
      expect((await t.request("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
    });
  });

  test("a correctly signed token of a live session is refused with a crit header, a future iat or nbf, or a lifetime over a day", async () => {
    const u = await t.user();
    const claims = JSON.parse(Buffer.from(u.token.split(".")[1]!, "base64url").toString());
    const now = Math.floor(Date.now() / 1000);
    const secret = t.config.jwtSecret;
    const signed = (header: object, payload: object) => {
      const input = `${b64(header)}.${b64(payload)}`;
      return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
    };
    const hs256 = { alg: "HS256", typ: "JWT" };
    const cases: Record<string, string> = {
      control: signed(hs256, claims),
      crit: signed({ ...hs256, crit: ["exp"] }, claims),
      "future iat": signed(hs256, { ...claims, iat: now + 3600, exp: now + 7200 }),
      "future nbf": signed(hs256, { ...claims, nbf: now + 3600 }),
      "ten-year exp": signed(hs256, { ...claims, exp: now + 10 * 365 * 86400 }),
    };
    const statuses: Record<string, number> = {};
    for (const [name, token] of Object.entries(cases)) statuses[name] = (await t.request("GET", "/api/v1/users/me", { token })).status;
    expect(statuses).toEqual({ control: 200, crit: 401, "future iat": 401, "future nbf": 401, "ten-year exp": 401 });
  });
});

describe("login limits with Redis", () => {
  test("failed attempts are counted across instances sharing one Redis", async () => {
    const prefix = testPrefix("rl");
    const dir = tempDir();
    const a = await makeApp({ REDIS_URL, REDIS_PREFIX: prefix, RATE_LIMIT_LOGIN_PER_MINUTE: "3", INSTANCE_ID: "a" }, dir);
    const b = await makeApp({ REDIS_URL, REDIS_PREFIX: prefix, RATE_LIMIT_LOGIN_PER_MINUTE: "3", INSTANCE_ID: "b" }, dir);
    const body = { email: "shared-limit@example.com", password: "wrong-password" };
    expect((await a.json("POST", "/api/v1/auth/login", { body })).status).toBe(401);
    expect((await b.json("POST", "/api/v1/auth/login", { body })).status).toBe(401);
    expect((await a.json("POST", "/api/v1/auth/login", { body })).status).toBe(401);
    const r = await b.json("POST", "/api/v1/auth/login", { body });
    expect(r.status).toBe(429);
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    await a.close();
    await b.close();
  }, 20_000);
});

describe("TokenCache", () => {
  const secret = "test-secret-test-secret-test-secret-0123";
  const now = () => Math.floor(Date.now() / 1000);

  test("an entry is used until the token's own expiry, then dropped", () => {
    const cache = new TokenCache(10);
    const claims = { sub: "1", sid: "s", adm: false, iat: 0, exp: 1_000 };
    cache.set("Bearer t", claims, { userId: 1, isAdmin: false, sessionId: "s" });
    expect(cache.get("Bearer t", 999)?.userId).toBe(1);
    expect(cache.get("Bearer t", 1_000)).toBeUndefined();
    expect(cache.get("Bearer t", 999)).toBeUndefined(); // deleted, not only hidden
  });

  test("only the canonical spelling is stored: variants of one token cannot fill it", () => {
    const cache = new TokenCache(10);
    const token = signJwt({ sub: "4", sid: "s", adm: false, iat: now(), exp: now() + 60 }, secret);
    for (let i = 1; i <= 20; i++) expect(authenticate(`Bearer${" ".repeat(i + 1)}${token}`, secret, cache)?.userId).toBe(4);
    expect(authenticate(`bearer ${token}`, secret, cache)?.userId).toBe(4);
    expect(cache.get(`bearer ${token}`, now())).toBeUndefined();
    expect(cache.get(`Bearer  ${token}`, now())).toBeUndefined();
    expect(authenticate(`Bearer ${token}`, secret, cache)?.userId).toBe(4);
    expect(cache.get(`Bearer ${token}`, now())?.userId).toBe(4);
  });
});
