// What the hot-path changes must keep: x-request-id on every kind of response (a cached Response returned by
// the handler, objects, 201, 204, errors, OpenAPI), one log line per request, and id validation.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { fastRead } from "../src/platform/http/fast-read.ts";
import { cachedRead } from "../src/platform/http/cached-read.ts";
import { IdParams, PageQuery, UserId } from "../src/platform/http/models.ts";
import { notFound } from "../src/platform/http/errors.ts";
import { MemoryRateLimiter } from "../src/platform/http/rate-limit.ts";
import { rawRequest } from "./support/raw-http.ts";
import { t as tb } from "elysia";
import { signJwt } from "../src/platform/http/jwt.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { durationText, logRequest, requestLogger, type RequestId } from "../src/platform/http/request-context.ts";
import { makeApp, REDIS_URL, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { APP_WAY, comparable, expectLimitedAlike, expectReadLimitSpent, fastAnswers, memorySessions, parityInstance, rateLimited, requestLine, requestsCounted } from "./support/fast-parity.ts";
import { logsSettled } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

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
  await logsSettled(logs, async (rid) => (await t.request("GET", "/health/live", { headers: { "x-request-id": rid } })).arrayBuffer());
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

describe("a cached read's fast answer, made from its declaration", () => {
  const secret = "test-secret-test-secret-test-secret-0123";
  const inAMinute = () => Math.floor(Date.now() / 1000) + 60;
  const tokenOf = (sub: string, sid: string, exp = inAMinute()) => signJwt({ sub, sid, adm: false, iat: Math.floor(Date.now() / 1000), exp }, secret);
  const token = tokenOf("3", "s");
  const bearer = { authorization: `Bearer ${token}` };
  const setup = async () => {
    const { cache, auth } = await memorySessions(secret, "fast");
    await cache.getOrSet("session:revoked", async () => null, { tags: ["sessions:3"] });
    return { cache, auth };
  };
  const detailRead = (rows: Map<number, unknown>, loads: number[]) =>
    cachedRead({
      path: "/:id",
      auth: "user",
      params: IdParams,
      response: tb.Object({}),
      problems: [401, 404],
      detail: { operationId: "getThing", summary: "A thing" },
      entry: ({ params }) => ({
        key: `user:${params.id}:detail`,
        tags: [`user:${params.id}`],
        load: async () => {
          loads.push(params.id);
          return rows.get(params.id) ?? null;
        },
      }),
      missing: ({ params }) => notFound(`User ${params.id} not found`),
    });
  const req = (path: string, headers: Record<string, string> = bearer, method = "GET") =>
    new Request(`http://localhost/api/v1/users/${path}`, { method, headers });

  test("answers an L1 hit at once and a miss through the declared loader, with the same bytes and headers", async () => {
    const { cache, auth } = await setup();
    const detail = { user: { id: 7 }, posts: [], preferences: {} };
    const loads: number[] = [];
    const answered: string[] = [];
    const fast = fastRead("/api/v1/users/:id", detailRead(new Map([[7, detail]]), loads), cache, {
      auth,
      observe: (route) => (_ms, id) => answered.push(`${route} ${id}`),
    })!;
    const miss = fast(req("7", { ...bearer, "x-request-id": "fast-miss" }), { id: "7" }, performance.now());
    expect(miss).toBeInstanceOf(Promise);
    const m = (await miss)!;
    expect([m.status, m.headers.get("x-cache"), await m.text(), loads]).toEqual([200, "miss", JSON.stringify(detail), [7]]);
    const r = fast(req("7", { ...bearer, "x-request-id": "fast-1" }), { id: "7" }, performance.now());
    expect(r).toBeInstanceOf(Response);
    // One Headers template per x-cache value is reused: a later response must not change this one's id.
    const later = fast(req("7", { ...bearer, "x-request-id": "fast-2" }), { id: "7" }, performance.now()) as Response;
    expect(later.headers.get("x-request-id")).toBe("fast-2");
    const hit = r as Response;
    expect([hit.status, hit.headers.get("x-cache"), hit.headers.get("x-request-id"), hit.headers.get("content-type")]).toEqual([200, "hit-l1", "fast-1", "application/json;charset=utf-8"]);
    expect(await hit.text()).toBe(JSON.stringify(detail));
    expect(loads).toEqual([7]);
    expect(answered).toEqual(["/api/v1/users/:id fast-miss", "/api/v1/users/:id fast-1", "/api/v1/users/:id fast-2"]);
    // Spellings the auth macro accepts are answered here too.
    for (const authorization of [`bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`]) {
      expect({ authorization, status: (fast(req("7", { authorization }), { id: "7" }, 0) as Response | undefined)?.status }).toEqual({ authorization, status: 200 });
    }
    await cache.invalidateTags(["user:7"]);
    expect(fast(req("7"), { id: "7" }, 0)).toBeInstanceOf(Promise);
    await cache.close();
  });

  test("declines what the app must answer: HEAD, a body, ids not canonical, tokens and sessions refused, nothing there", async () => {
    const { cache, auth } = await setup();
    const loads: number[] = [];
    const fast = fastRead("/api/v1/users/:id", detailRead(new Map([[7, { user: { id: 7 } }]]), loads), cache, { auth, observe: () => () => {} })!;
    const declined: [string, Request, string][] = [
      ["no token", req("7", {}), "7"],
      ["bad token", req("7", { authorization: `Bearer ${token}x` }), "7"],
      ["expired token", req("7", { authorization: `Bearer ${tokenOf("3", "s", 1)}` }), "7"],
      ["revoked session", req("7", { authorization: `Bearer ${tokenOf("3", "revoked")}` }), "7"],
      ["session of another user", req("7", { authorization: `Bearer ${tokenOf("4", "s")}` }), "7"],
      ["not canonical", req("07"), "07"],
      ["zero", req("0"), "0"],
      ["not a number", req("7a"), "7a"],
      ["a body", req("7", { ...bearer, "content-length": "2" }), "7"],
      ["HEAD", req("7", bearer, "HEAD"), "7"],
      ["too large", req("99999999999999999"), "99999999999999999"],
    ];
    // Declined at once, or (a session not in memory is loaded first) once the session is refused.
    for (const [name, request, id] of declined) expect({ name, r: await fast(request, { id }, 0) }).toEqual({ name, r: undefined });
    expect(loads).toEqual([]);
    // Not in memory: loaded, and refused (this database has no sessions), so the app answers.
    expect(await fast(req("7", { authorization: `Bearer ${tokenOf("3", "not-in-memory")}` }), { id: "7" }, 0)).toBeUndefined();
    // Nothing there: loaded (null), then read from the cache (null); the app writes the 404 both times.
    expect(await fast(req("8"), { id: "8" }, 0)).toBeUndefined();
    expect(await fast(req("8"), { id: "8" }, 0)).toBeUndefined();
    expect(loads).toEqual([8]);
    // Revoking the user's sessions drops the cached state: the session is read again (and refused here).
    expect((await fast(req("7"), { id: "7" }, 0))?.status).toBe(200);
    await cache.invalidateTags(["sessions:3"]);
    expect(await fast(req("7"), { id: "7" }, 0)).toBeUndefined();
    await cache.close();
  });

  test("reads the query by the declared schema: defaults applied, anything the validator could answer otherwise declined", async () => {
    const { cache, auth } = await setup();
    const read = cachedRead({
      path: "/:id/posts",
      auth: "user",
      params: tb.Object({ id: UserId }),
      query: PageQuery,
      response: tb.Object({}),
      problems: [401, 404],
      detail: { operationId: "listThings", summary: "Things" },
      entry: ({ params, query }) => ({ key: `p:${params.id}:${query.page}:${query.limit}`, tags: [], load: async () => ({ page: query.page, limit: query.limit }) }),
      missing: () => notFound("none"),
    });
    const fast = fastRead("/api/v1/users/:id/posts", read, cache, { auth, observe: () => () => {} })!;
    const ask = async (qs: string) => {
      const r = await fast(req(`7/posts${qs}`), { id: "7" }, 0);
      return r === undefined ? undefined : await r.text();
    };
    expect(await ask("")).toBe('{"page":1,"limit":10}');
    expect(await ask("?")).toBe('{"page":1,"limit":10}');
    expect(await ask("?page=2&limit=5")).toBe('{"page":2,"limit":5}');
    expect(await ask("?limit=5&page=3")).toBe('{"page":3,"limit":5}');
    expect(await ask("?limit=100")).toBe('{"page":1,"limit":100}');
    for (const qs of ["?page=02", "?x=1", "?page=1&page=2", "?limit=101", "?page=0", "?page=%31", "?page=", "?page", "?page=1&", "?page=1+1", "?page=-1", "?page=1.0"]) {
      expect({ qs, r: await ask(qs) }).toEqual({ qs, r: undefined });
    }
    await cache.close();
  });

  test("an admin read is answered for an admin only; a read whose schemas are not DecimalInt objects gets no fast route", async () => {
    const { cache, auth } = await setup();
    await cache.getOrSet("session:a", async () => ({ userId: 5, isAdmin: true }), { tags: ["sessions:5"] });
    const admin = { authorization: `Bearer ${signJwt({ sub: "5", sid: "a", adm: true, iat: Math.floor(Date.now() / 1000), exp: inAMinute() }, secret)}` };
    const read = { ...detailRead(new Map([[7, { user: { id: 7 } }]]), []), auth: "admin" as const };
    const fast = fastRead("/api/v1/users/:id", read, cache, { auth, observe: () => () => {} })!;
    expect(await fast(req("7"), { id: "7" }, 0)).toBeUndefined();
    expect((await fast(req("7", admin), { id: "7" }, 0))?.status).toBe(200);
    const textId = { ...read, params: tb.Object({ id: tb.String() }) };
    expect(fastRead("/api/v1/things/:id", textId, cache, { auth, observe: () => () => {} })).toBeNull();
    const looseQuery = { ...read, query: tb.Object({ q: tb.Optional(tb.String()) }) };
    expect(fastRead("/api/v1/things/:id", looseQuery, cache, { auth, observe: () => () => {} })).toBeNull();
    await cache.close();
  });

  test("a read refused by the limit is handed to the app's limiter with its decision, counted once", async () => {
    const { cache, auth } = await setup();
    const limiter = new MemoryRateLimiter();
    const policy = { name: "read", limit: 2, windowSeconds: 60 };
    const fast = fastRead("/api/v1/users/:id", detailRead(new Map([[7, { user: { id: 7 } }]]), []), cache, { auth, rateLimit: { limiter, policy }, observe: () => () => {} })!;
    const first = (await fast(req("7"), { id: "7" }, 0))!;
    expect(first.headers.get("ratelimit")).toBe('"read";r=1;t=30');
    expect((fast(req("7"), { id: "7" }, 0) as Response).headers.get("ratelimit")).toMatch(/^"read";r=0;t=\d+$/);
    expect(fast(req("7"), { id: "7" }, 0)).toBeUndefined();
    expect(limiter.stats().limited).toBe(1);
    await cache.close();
  });
});

describe("a real instance answers the same fast as through the app", () => {
  const start = parityInstance;
  const requests = requestsCounted;

  test("status, body bytes, headers, log line and metrics of every cached read, hit and miss; 401, 404 and 422 too", async () => {
    const lines: string[] = [];
    const s = await start({}, lines);
    try {
      const auth = { authorization: `Bearer ${s.token}` };
      const reads: [string, string, string][] = [
        ["detail", `/api/v1/users/${s.id}`, "/api/v1/users/:id"],
        ["me", "/api/v1/users/me", "/api/v1/users/me"],
        ["posts", `/api/v1/users/${s.id}/posts?page=1&limit=5`, "/api/v1/users/:id/posts"],
        ["posts-default", `/api/v1/users/${s.id}/posts`, "/api/v1/users/:id/posts"],
        ["prefs", `/api/v1/users/${s.id}/preferences`, "/api/v1/users/:id/preferences"],
      ];
      for (const [name, path, route] of reads) {
        const before = await s.metrics();
        const get = (rid: string, extra: Record<string, string> = {}) => rawRequest(s.instance.url, "GET", path, { ...auth, "x-request-id": rid, ...extra });
        await s.instance.deps.cache.invalidateTags([`user:${s.id}`]);
        const appMiss = await get(`${name}-app-miss`, APP_WAY);
        await s.instance.deps.cache.invalidateTags([`user:${s.id}`]);
        const fastMiss = await get(`${name}-fast-miss`);
        const fastHit = await get(`${name}-fast-hit`);
        const appHit = await get(`${name}-app-hit`, APP_WAY);
        const after = await s.metrics();
        expect({ name, cache: [appMiss, fastMiss, fastHit, appHit].map((r) => r.headers["x-cache"]) }).toEqual({ name, cache: ["miss", "miss", "hit-l1", "hit-l1"] });
        expect({ name, fast: fastAnswers(after) - fastAnswers(before) }).toEqual({ name, fast: 2 });
        expect({ name, counted: requests(after, route, 200) - requests(before, route, 200) }).toEqual({ name, counted: 4 });
        expect(comparable(fastMiss)).toEqual(comparable(appMiss));
        expect(comparable(fastHit)).toEqual(comparable(appHit));
        expect(fastHit.headers["x-request-id"]).toBe(`${name}-fast-hit`);
        expect(appMiss.status).toBe(200);
      }
      // Problems are the app's both ways: the fast answer declines, the app writes them.
      const before = fastAnswers(await s.metrics());
      for (const [path, headers, status] of [
        [`/api/v1/users/${s.id}`, {}, 401],
        [`/api/v1/users/99999999`, auth, 404],
        [`/api/v1/users/99999999/preferences`, auth, 404],
        [`/api/v1/users/0`, auth, 422],
        [`/api/v1/users/${s.id}/posts?limit=101`, auth, 422],
        [`/api/v1/users/${s.id}/posts?page=1&x=2`, auth, 422],
      ] as const) {
        const fastWay = await rawRequest(s.instance.url, "GET", path, { ...headers, "x-request-id": "p" });
        const appWay = await rawRequest(s.instance.url, "GET", path, { ...headers, "x-request-id": "p", ...APP_WAY });
        expect({ path, status: fastWay.status }).toEqual({ path, status });
        expect(comparable(fastWay)).toEqual(comparable(appWay));
      }
      expect(fastAnswers(await s.metrics())).toBe(before);
      // Bun's router decides what reaches a fast answer: a percent-encoded id does; a trailing slash, HEAD, other
      // methods and longer paths go to the app.
      const encoded = await rawRequest(s.instance.url, "GET", `/api/v1/users/%${String(s.id).charCodeAt(0).toString(16)}${String(s.id).slice(1)}`, auth);
      const plain = await rawRequest(s.instance.url, "GET", `/api/v1/users/${s.id}`, auth);
      expect([encoded.status, encoded.body]).toEqual([200, plain.body]);
      expect(fastAnswers(await s.metrics())).toBe(before + 2);
      for (const [method, path, status] of [
        ["GET", `/api/v1/users/${s.id}/`, 200],
        ["HEAD", `/api/v1/users/${s.id}`, 200],
        ["DELETE", `/api/v1/users/${s.id + 1000}`, 403],
      ] as const) {
        const r = await rawRequest(s.instance.url, method, path, auth);
        expect({ method, path, status: r.status, rid: r.headers["x-request-id"] !== undefined }).toEqual({ method, path, status, rid: true });
      }
      expect(fastAnswers(await s.metrics())).toBe(before + 2);
      await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
      const pick = (rid: string) => requestLine(lines, rid);
      for (const [name, , route] of reads) {
        const line = pick(`${name}-fast-hit`);
        expect(line).toEqual({ level: "info", msg: "request", method: "GET", route, status: 200 });
        for (const way of ["fast-miss", "app-miss", "app-hit"]) expect(pick(`${name}-${way}`)).toEqual(line);
      }
    } finally {
      await s.stop();
    }
  }, 60_000);

  test("429: fast answers count toward the read limit once, and the refusal is the app's problem", async () => {
    const lines: string[] = [];
    const s = await start({ RATE_LIMIT_READ_PER_MINUTE: "3", BODY_LIMIT_BYTES: "1024" }, lines);
    try {
      const get = (extra: Record<string, string> = {}) => rawRequest(s.instance.url, "GET", `/api/v1/users/${s.id}`, { authorization: `Bearer ${s.token}`, ...extra });
      await expectReadLimitSpent(get, s.metrics);
      const fastWay = await get();
      const appWay = await get(APP_WAY);
      expectLimitedAlike(fastWay, appWay);
      const text = await s.metrics();
      expect(rateLimited(text)).toBe(2);
      expect(requests(text, "/api/v1/users/:id", 429)).toBe(2);
      // Answered before Elysia routed them (the limit, a body over the limit): one log line each and the metrics,
      // under the route's label, like every other answer.
      const tooLarge = await rawRequest(s.instance.url, "POST", `/api/v1/users/${s.id}/posts`, { "content-length": "5000", "x-request-id": "too-large" });
      expect(tooLarge.status).toBe(413);
      expect(requests(await s.metrics(), "/api/v1/users/:id/posts", 413, "POST")).toBe(1);
      await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
      const parsed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
      expect(parsed.filter((l) => l.status === 429).map((l) => l.route)).toEqual(["/api/v1/users/:id", "/api/v1/users/:id"]);
      expect(parsed.filter((l) => l.request_id === "too-large").map((l) => [l.method, l.route, l.status])).toEqual([["POST", "/api/v1/users/:id/posts", 413]]);
    } finally {
      await s.stop();
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
