// What the hot-path changes must keep: x-request-id on every kind of response (a cached Response returned by
// the handler, objects, 201, 204, errors, OpenAPI), one log line per request, and id validation.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { MemoryBus } from "../src/platform/cache/bus.ts";
import { userDetailFastPath } from "../src/platform/cache/fast-read.ts";
import { userKeys } from "../src/modules/users/keys.ts";
import { Auth } from "../src/platform/http/auth.ts";
import { Sessions } from "../src/platform/http/sessions.ts";
import type { Database } from "../src/platform/db/client.ts";
import { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { signJwt } from "../src/platform/http/jwt.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { durationText, logRequest, requestLogger, type RequestId } from "../src/platform/http/request-context.ts";
import { startInstance } from "../src/main/serve.ts";
import { rmSync } from "node:fs";
import { makeApp, REDIS_URL, tempDir, testEnv, type TestApp } from "./helpers.ts";

let t: TestApp;
const logs: string[] = [];
let u: { id: number; token: string };
beforeAll(async () => {
  t = await makeApp({ REDIS_URL }, undefined, { logs });
  u = await t.user();
});
afterAll(() => t.close());

test("x-request-id is echoed (or made) on cached reads, objects, 201, 204, errors and OpenAPI, with one log line each", async () => {
  const v = await t.user();
  await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  const cases: [string, string, Record<string, unknown>, number][] = [
    ["GET", `/api/v1/users/${u.id}`, { token: u.token }, 200],
    ["GET", `/api/v1/users/${u.id}/posts?limit=2`, { token: u.token }, 200],
    ["POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "t", content: "c" } }, 201],
    ["PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "N" } }, 200],
    ["DELETE", `/api/v1/users/${v.id}`, { token: v.token }, 204],
    ["GET", `/api/v1/users/0`, { token: u.token }, 422],
    ["GET", `/api/v1/users/abc`, { token: u.token }, 422],
    ["GET", `/api/v1/users/1.5`, { token: u.token }, 422],
    ["GET", `/api/v1/users/99999999`, { token: u.token }, 404],
    ["GET", `/api/v1/users/${u.id}`, {}, 401],
    ["GET", "/swagger/json", {}, 200],
  ];
  for (const [i, [method, path, opts, status]] of cases.entries()) {
    const rid = `rid-${i}`;
    const r = await t.request(method, path, { ...(opts as object), headers: { "x-request-id": rid } });
    expect({ path, method, status: r.status }).toEqual({ path, method, status });
    expect(r.headers.get("x-request-id")).toBe(rid);
    await r.arrayBuffer();
  }
  await (await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token })).arrayBuffer(); // refill after the PATCH
  const generated = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  expect(generated.headers.get("x-cache")).toBe("hit-l1");
  expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  await Bun.sleep(20);
  const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  for (let i = 0; i < cases.length; i++) {
    const mine = lines.filter((l) => l.request_id === `rid-${i}`);
    expect(mine).toHaveLength(1);
    expect(mine[0].status).toBe(cases[i]![3]);
  }
});

test("the cached detail body is the same JSON the database path produces", async () => {
  const first = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  const cachedText = await first.text();
  await t.deps.cache.invalidateTags([`user:${u.id}`]);
  const fresh = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  expect(fresh.headers.get("x-cache")).toBe("miss");
  expect(await fresh.text()).toBe(cachedText);
});

describe("the cached-read fast path in front of Elysia", () => {
  const secret = "test-secret-test-secret-test-secret-0123";
  const logLines: string[] = [];
  const fastLogger = createLogger("info", {}, (l) => logLines.push(l));

  test("answers only an L1 hit of GET /api/v1/users/<canonical id> with a valid token, with the app's bytes and headers", async () => {
    const detail = { user: { id: 7 }, posts: [], preferences: {} };
    const cache = new TwoTierCache({
      instanceId: "fast",
      logger: fastLogger,
      l1: { enabled: true, maxItems: 10, maxBytes: 1 << 20, maxEntryBytes: 1 << 16 },
      ttlSeconds: 60,
      staleGraceSeconds: 0,
      l2: null,
      bus: new MemoryBus(),
    });
    await cache.start();
    // The fast path reads sessions from memory only (the cache's L1): it never touches the database.
    const auth = new Auth(secret, new Sessions(undefined as unknown as Database, cache));
    const fast = userDetailFastPath({ cache, key: userKeys.detail, logger: fastLogger, auth })!;
    await cache.getOrSet("session:s", async () => ({ userId: 3, isAdmin: false }), { tags: ["sessions:3"] });
    await cache.getOrSet("session:revoked", async () => null, { tags: ["sessions:3"] });
    const revoked = signJwt({ sub: "3", sid: "revoked", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    const unknownSession = signJwt({ sub: "3", sid: "not-in-memory", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    const otherUser = signJwt({ sub: "4", sid: "s", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    const token = signJwt({ sub: "3", sid: "s", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    const expired = signJwt({ sub: "3", sid: "s", adm: false, iat: 0, exp: 1 }, secret);
    // The server's router hands the fast path GET /api/v1/users/:id with the decoded :id.
    const req = (id: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }, method = "GET") =>
      [new Request(`http://localhost/api/v1/users/${id}`, { method, headers }), id, performance.now()] as const;

    expect(fast(...req("7"))).toBeUndefined(); // not cached yet
    await cache.getOrSet("user:7:detail", async () => detail, { tags: ["user:7"] });
    await cache.getOrSet("user:8:detail", async () => null, { tags: ["user:8"] });

    const r = fast(...req("7", { authorization: `Bearer ${token}`, "x-request-id": "fast-1" }))!;
    // One Headers template per x-cache value is reused: a later response must not change this one's id.
    const later = fast(...req("7", { authorization: `Bearer ${token}`, "x-request-id": "fast-2" }))!;
    expect(later.headers.get("x-request-id")).toBe("fast-2");
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(JSON.stringify(detail));
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.headers.get("x-cache")).toBe("hit-l1");
    expect(r.headers.get("x-request-id")).toBe("fast-1");
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.request_id === "fast-1");
    expect(line).toMatchObject({ msg: "request", method: "GET", route: "/api/v1/users/:id", status: 200 });
    expect(typeof line.duration_ms).toBe("number");

    const declined: [string, ReturnType<typeof req>][] = [
      ["no token", req("7", {})],
      ["bad token", req("7", { authorization: `Bearer ${token}x` })],
      ["expired token", req("7", { authorization: `Bearer ${expired}` })],
      ["revoked session", req("7", { authorization: `Bearer ${revoked}` })],
      ["session not in memory", req("7", { authorization: `Bearer ${unknownSession}` })],
      ["session of another user", req("7", { authorization: `Bearer ${otherUser}` })],
      ["not canonical", req("07")],
      ["not a number", req("7a")],
      ["a body", req("7", { authorization: `Bearer ${token}`, "content-length": "2" })],
      ["HEAD", req("7", undefined, "HEAD")],
      ["cached not-found", req("8")],
      ["too large", req("99999999999999999")],
    ];
    for (const [name, args] of declined) expect({ name, r: fast(...args) }).toEqual({ name, r: undefined });
    // Spellings the auth macro accepts are answered here too (verified each time: only the canonical one is cached).
    for (const authorization of [`bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`]) {
      expect({ authorization, status: fast(...req("7", { authorization }))?.status }).toEqual({ authorization, status: 200 });
    }
    await cache.invalidateTags(["user:7"]);
    expect(fast(...req("7"))).toBeUndefined();
    await cache.getOrSet("user:7:detail", async () => detail, { tags: ["user:7"] });
    expect(fast(...req("7"))?.status).toBe(200);
    // Revoking the user's sessions drops the cached state: the app decides again.
    await cache.invalidateTags(["sessions:3"]);
    expect(fast(...req("7"))).toBeUndefined();
    await cache.close();
  });

  test("a real instance answers the same bytes, headers and log line through it as through Elysia", async () => {
    const lines: string[] = [];
    const dir = tempDir("fast-");
    const config = loadConfig(testEnv({ REDIS_URL, PORT: "0", HOST: "127.0.0.1", METRICS_ENABLED: "true", METRICS_PORT: "0", LOG_LEVEL: "info" }, dir));
    const instance = await startInstance(config, { logger: createLogger("info", {}, (l) => lines.push(l)) });
    try {
      const post = (path: string, body: unknown, token?: string) =>
        fetch(`${instance.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(body),
        });
      const created = await (await post("/api/v1/users", { email: "fast@example.com", password: "password-1", full_name: "Fast" })).json();
      const { access_token } = await (await post("/api/v1/auth/login", { email: "fast@example.com", password: "password-1" })).json();
      await post(`/api/v1/users/${created.id}/posts`, { title: "hello", content: "world" }, access_token);
      const get = (rid: string) => fetch(`${instance.url}/api/v1/users/${created.id}`, { headers: { authorization: `Bearer ${access_token}`, "x-request-id": rid } });
      // Which way a request went shows only in the fast path's counter: the answers are the same by design.
      const fastAnswers = async () => Number(/^http_fast_path_answers_total (\d+)$/m.exec(await (await fetch(instance.metricsUrl!)).text())?.[1]);
      const viaApp = await get("via-app");
      expect(await fastAnswers()).toBe(0);
      const viaFast = await get("via-fast");
      expect(await fastAnswers()).toBe(1);
      expect(viaApp.headers.get("x-cache")).toBe("miss");
      expect(viaFast.headers.get("x-cache")).toBe("hit-l1");
      expect(await viaFast.text()).toBe(await viaApp.text());
      expect(viaFast.headers.get("content-type")).toBe(viaApp.headers.get("content-type"));
      expect(viaFast.headers.get("x-request-id")).toBe("via-fast");
      await Bun.sleep(30);
      const parsed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
      const pick = (rid: string) => {
        const ls = parsed.filter((l) => l.request_id === rid);
        expect(ls).toHaveLength(1);
        const { time: _t, duration_ms: _d, request_id: _r, ...rest } = ls[0];
        return rest;
      };
      expect(pick("via-fast")).toEqual(pick("via-app"));
      // A write is seen at once: the next read is a miss through the app, then fast again.
      await fetch(`${instance.url}/api/v1/users/${created.id}`, {
        method: "PATCH",
        headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
        body: JSON.stringify({ full_name: "Renamed" }),
      });
      const after = await get("after-write");
      expect(after.headers.get("x-cache")).toBe("miss");
      expect((await after.json()).user.full_name).toBe("Renamed");

      // Bun's router decides what reaches the fast path: a query string and a percent-encoded id do, and get
      // the same answer as the plain path; a trailing slash, other methods, HEAD and longer paths go to the app.
      const auth = { authorization: `Bearer ${access_token}` };
      const answer = async (path: string, method = "GET") => {
        const r = await fetch(`${instance.url}${path}`, { method, headers: auth });
        return { status: r.status, cache: r.headers.get("x-cache"), body: method === "HEAD" ? "" : await r.text(), rid: r.headers.get("x-request-id") !== null };
      };
      const before = await fastAnswers();
      const fresh = await answer(`/api/v1/users/${created.id}`); // L1 filled
      expect(fresh.cache).toBe("hit-l1");
      expect(await fastAnswers()).toBe(before + 1);
      // The fast path reuses one Headers template per x-cache value: many at once still get their own id.
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => get(`many-${i}`).then(async (r) => [r.headers.get("x-request-id"), r.headers.get("x-cache"), await r.text()])));
      expect(many.map(([rid, cache]) => [rid, cache])).toEqual(Array.from({ length: 50 }, (_, i) => [`many-${i}`, "hit-l1"]));
      expect(await fastAnswers()).toBe(before + 51);
      for (const path of [`/api/v1/users/${created.id}?x=1`, `/api/v1/users/${encodeURIComponent(String(created.id)).replace(/^(.)/, (c) => "%" + c.charCodeAt(0).toString(16))}`]) {
        expect({ path, ...(await answer(path)) }).toEqual({ path, ...fresh });
      }
      expect(await fastAnswers()).toBe(before + 53);
      for (const [method, path, status] of [
        ["GET", `/api/v1/users/${created.id}/`, 200], // Elysia ignores a trailing slash
        ["GET", `/api/v1/users/0${created.id}`, 422], // not canonical: declined here, refused by the app (issue 13)
        ["HEAD", `/api/v1/users/${created.id}`, 200],
        ["DELETE", `/api/v1/users/${created.id + 1000}`, 403], // not theirs
        ["GET", `/api/v1/users/${created.id}/posts`, 200],
      ] as const) {
        const r = await answer(path, method);
        expect({ method, path, status: r.status, rid: r.rid }).toEqual({ method, path, status, rid: true });
      }
      expect(await fastAnswers()).toBe(before + 53); // none of those took the fast path
    } finally {
      await instance.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe("the request log line of the fast path", () => {
  test("durationText writes what JSON.stringify writes for Math.round(ms * 100) / 100", () => {
    const samples = [0, 0.004, 0.005, 0.01, 0.05, 0.1, 0.123, 0.999, 0.995, 1, 1.2, 1.25, 9.999, 10.05, 123.456, 99999.994];
    for (let i = 0; i < 20_000; i++) samples.push(Math.random() * 10 ** Math.floor(Math.random() * 6));
    for (const ms of samples) expect({ ms, text: durationText(ms) }).toEqual({ ms, text: JSON.stringify(Math.round(ms * 100) / 100) });
  });

  test("requestLogger writes the same line as logRequest", () => {
    const lines: string[] = [];
    const logger = createLogger("info", { instance: "i-1", region: "ams" }, (l) => lines.push(l));
    const id = "req-1" as RequestId;
    logRequest(logger, "GET", "/api/v1/users/:id", 200, 1.234, id);
    requestLogger(logger, "GET", "/api/v1/users/:id", 200)(1.234, id);
    expect(lines).toHaveLength(2);
    const untimed = (l: string) => l.replace(/^\{"time":"[^"]+"/, '{"time":"T"'); // the two may fall in different ms
    expect(untimed(lines[1]!)).toBe(untimed(lines[0]!));
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", msg: "request", instance: "i-1", route: "/api/v1/users/:id", status: 200, duration_ms: 1.23, request_id: "req-1" });
    const quiet: string[] = [];
    requestLogger(createLogger("warn", {}, (l) => quiet.push(l)), "GET", "/x", 200)(1, id);
    expect(quiet).toEqual([]);
  });
});
