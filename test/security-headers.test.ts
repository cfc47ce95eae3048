// Response headers (nosniff, no-store, HSTS), CORS with preflights (on a replica too), and tokens whose
// payload is not an object.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createApp } from "../src/main/app.ts";
import { signJwt } from "../src/platform/http/jwt.ts";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ORIGIN = "https://app.example";
let t: TestApp;
let cors: TestApp;
const extra: TestApp[] = [];
beforeAll(async () => {
  t = await makeApp();
  cors = await makeApp({ CORS_ORIGINS: `${ORIGIN}, https://other.example` });
});
afterAll(async () => {
  await t.close();
  await cors.close();
  for (const a of extra) await a.close();
});

describe("headers on every answer", () => {
  test("nosniff and no-store on successes, errors, auth answers and early refusals; no HSTS unless configured", async () => {
    const u = await t.user();
    const login = await t.request("POST", "/api/v1/auth/login", { body: { email: u.email, password: "correct-horse" } });
    const answers = [
      login,
      await t.request("GET", "/api/v1/users/me", { token: u.token }),
      await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token }),
      await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token }),
      await t.request("GET", "/api/v1/users/me"),
      await t.request("GET", "/nowhere"),
      await t.request("POST", "/api/v1/users", { body: "{bad" }),
      await t.request("POST", "/api/v1/users", { body: "x", headers: { "content-length": String(10 * 1024 * 1024) } }),
      await t.request("GET", "/health/live"),
    ];
    for (const r of answers) {
      expect({ status: r.status, nosniff: r.headers.get("x-content-type-options") }).toEqual({ status: r.status, nosniff: "nosniff" });
      expect({ status: r.status, cc: r.headers.get("cache-control") }).toEqual({ status: r.status, cc: "no-store" });
      expect(r.headers.get("strict-transport-security")).toBeNull();
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
    expect(answers[3]!.headers.get("x-cache")).toBe("hit-l1");
  });

  test("HSTS when configured, and on Fly by default", async () => {
    const configured = await makeApp({ HSTS_MAX_AGE: "600" });
    const fly = await makeApp({ FLY_APP_NAME: "neodyme-test" });
    extra.push(configured, fly);
    expect((await configured.request("GET", "/health/live")).headers.get("strict-transport-security")).toBe("max-age=600; includeSubDomains");
    expect((await fly.request("GET", "/nowhere")).headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
  });
});

describe("CORS", () => {
  const preflight = (app: TestApp, path: string, origin: string) =>
    app.request("OPTIONS", path, { headers: { origin, "access-control-request-method": "PATCH", "access-control-request-headers": "authorization, content-type" } });

  test("a preflight from an allowed origin is answered 204 with the allowed methods and headers", async () => {
    const r = await preflight(cors, "/api/v1/users/1", ORIGIN);
    expect(r.status).toBe(204);
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(r.headers.get("access-control-allow-methods")).toContain("PATCH");
    expect(r.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(r.headers.get("vary")).toContain("Origin");
    expect(r.headers.get("x-request-id")).toBeTruthy();
  });

  test("another origin gets no allow headers; actual answers name the allowed origin and expose the useful headers", async () => {
    const denied = await preflight(cors, "/api/v1/users/1", "https://evil.example");
    expect(denied.headers.get("access-control-allow-origin")).toBeNull();
    const u = await cors.user();
    const r = await cors.request("GET", "/api/v1/users/me", { token: u.token, headers: { origin: ORIGIN } });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(r.headers.get("access-control-expose-headers")).toContain("ratelimit");
    const err = await cors.request("GET", "/api/v1/users/me", { headers: { origin: ORIGIN } });
    expect(err.status).toBe(401);
    expect(err.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const evil = await cors.request("GET", "/api/v1/users/me", { token: u.token, headers: { origin: "https://evil.example" } });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("a preflight grants its path's own methods; one to an unknown path gets the plain OPTIONS 404, no grant", async () => {
    const users = await preflight(cors, "/api/v1/users", ORIGIN);
    expect(users.status).toBe(204);
    expect(users.headers.get("access-control-allow-methods")).toBe("GET, HEAD, POST, OPTIONS");
    // So a browser never sends the PATCH the path answers 405.
    expect((await cors.request("PATCH", "/api/v1/users", { body: {} })).status).toBe(405);
    const one = await preflight(cors, "/api/v1/users/1", ORIGIN);
    expect(one.headers.get("access-control-allow-methods")).toBe(
      (await cors.request("OPTIONS", "/api/v1/users/1")).headers.get("allow"),
    );
    for (const path of ["/api/v1/nowhere", "/nothing/at/all"]) {
      const unknown = await preflight(cors, path, ORIGIN);
      const plain = await cors.request("OPTIONS", path);
      expect([unknown.status, plain.status]).toEqual([404, 404]);
      expect(unknown.headers.get("content-type")).toBe("application/problem+json");
      expect(unknown.headers.get("access-control-allow-methods")).toBeNull();
      expect(unknown.headers.get("access-control-allow-headers")).toBeNull();
    }
  });

  test("a 405's Allow is exposed to browser code", async () => {
    const r = await cors.request("PATCH", "/api/v1/users", { body: {}, headers: { origin: ORIGIN } });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect((r.headers.get("access-control-expose-headers") ?? "").split(", ")).toContain("allow");
  });

  test("off by default: no CORS headers, a preflight is not answered as one", async () => {
    const r = await preflight(t, "/api/v1/users/1", ORIGIN);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("a replica answers preflights of write routes (the write guard leaves OPTIONS alone)", async () => {
    const replica = createApp({
      ...cors.deps,
      role: { ...cors.deps.role, isPrimary: () => false, primaryName: () => "primary-1", state: () => ({ kind: "replica", primary: "primary-1" }) },
    });
    const write = await replica.handle(new Request("http://localhost/api/v1/users/1", { method: "PATCH", headers: { "content-type": "application/json" }, body: "{}" }));
    expect(write.status).toBe(409);
    const r = await replica.handle(
      new Request("http://localhost/api/v1/users/1", { method: "OPTIONS", headers: { origin: ORIGIN, "access-control-request-method": "PATCH" } }),
    );
    expect(r.status).toBe(204);
    expect(r.headers.get("access-control-allow-origin")).toBe(ORIGIN);
  });
});

describe("token payloads", () => {
  test("a correctly signed token whose payload is not an object is a 401, not a 500", async () => {
    const secret = t.config.jwtSecret;
    const { createHmac } = await import("node:crypto");
    const b64 = (s: string) => Buffer.from(s).toString("base64url");
    const forge = (payload: string) => {
      const input = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(payload)}`;
      return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
    };
    for (const payload of ["null", "[]", "1", '"x"', "true", "{", '{"sub":1}']) {
      const r = await t.request("GET", "/api/v1/users/me", { token: forge(payload) });
      expect({ payload, status: r.status }).toEqual({ payload, status: 401 });
      expect(r.headers.get("content-type")).toBe("application/problem+json");
    }
    const ok = signJwt({ sub: "1", sid: "none", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    expect((await t.request("GET", "/api/v1/users/me", { token: ok })).status).toBe(401);
  });
});
