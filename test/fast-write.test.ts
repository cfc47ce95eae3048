// The declared writes (PATCH preferences, PATCH user, POST posts) answered in front of Elysia give what the app
// gives: status, body bytes, headers, log line and metrics, for successes and for every problem; what they
// decline (an Idempotency-Key, a body the app refuses, a chunked body) the app handles as before.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { createLogger } from "../src/platform/observability/logger.ts";
import { REDIS_URL, serveApp, tempDir, TEST_TIMEOUT_MS, WIRINGS } from "./helpers.ts";
import { rawRequest, type RawResponse } from "./support/raw-http.ts";
import { comparable, expectLimitedAlike, fastAnswers, rateLimited, requestsCounted } from "./support/fast-parity.ts";
import { logsSettled, waitUntil } from "./support/wait.ts";
import { holdWriteLock } from "./support/sqlite-lock.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "fast-admin@example.com", password: "admin-password-1" };
// The app's way for the same request: a chunked body (no Content-Length) is one of the things a fast write declines.
const APP_WAY = { "transfer-encoding": "chunked" };

async function start(env: Record<string, string>, lines: string[]) {
  const dir = tempDir("fast-write-");
  const instance = await serveApp(
    { METRICS_ENABLED: "true", METRICS_PORT: "0", LOG_LEVEL: "info", ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ...env },
    dir,
    { logger: createLogger("info", {}, (l) => lines.push(l)) },
  );
  const post = async (path: string, body: unknown) =>
    (await fetch(`${instance.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<
      Record<string, unknown>
    >;
  const account = async (email: string, password = "password-1") => {
    const created = email === ADMIN.email ? undefined : await post("/api/v1/users", { email, password, full_name: "Fast" });
    const { access_token } = (await post("/api/v1/auth/login", { email, password: email === ADMIN.email ? ADMIN.password : password })) as { access_token: string };
    return { id: created?.id as number, token: access_token };
  };
  const metrics = async () => await (await fetch(instance.metricsUrl!)).text();
  const stop = async () => {
    await instance.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { instance, account, metrics, stop };
}

/**
 * What must be equal both ways (fast-parity.ts comparable), and also not what a write makes anew each time (the
 * ids and times of a new post, updated_at: their places in the bytes stay), nor the seconds until the write
 * limit's quota is whole (the two answers come a moment apart).
 */
const comparableWrite = (r: RawResponse) => {
  const { "content-length": _l, ...headers } = r.headers;
  const c = comparable({ ...r, headers, body: r.body.replace(/"(id|created_at|updated_at)":("[^"]*"|\d+)/g, '"$1":X') });
  return { ...c, ratelimit: c.ratelimit?.replace(/;t=\d+/, ";t=T") };
};

describe.each(WIRINGS)("a declared write answered in front of the app, over $wiring", ({ env }) => {
  test("the same status, bytes, headers, log line and metrics as the app for success, 401, 403, 404, 409, 413, 422", async () => {
    const lines: string[] = [];
    const s = await start({ ...env, BODY_LIMIT_BYTES: "4096" }, lines);
    try {
      const u = await s.account("fast-u@example.com");
      const v = await s.account("fast-v@example.com");
      const admin = await s.account(ADMIN.email);
      // A token whose session is over (logout): refused as a forged one is.
      const revoked = await s.account("fast-revoked@example.com");
      expect((await fetch(`${s.instance.url}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${revoked.token}` } })).status).toBe(204);
      const bearer = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });
      const fiftyKeys = JSON.stringify(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])));
      const cases: [name: string, method: string, path: string, route: string, headers: Record<string, string>, body: string, status: number, fast: boolean][] = [
        ["prefs", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), '{"theme":"dark","n":1.5,"b":true}', 200, true],
        ["prefs-admin", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(admin.token), '{"theme":null}', 200, true],
        ["user", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), '{"full_name":"Ada Fast"}', 200, true],
        ["post", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":"hello","content":"world\\nline two"}', 201, true],
        // Problems of the write itself (after it ran): answered in front of the app, as the app's onError would.
        ["prefs-403", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(v.token), '{"theme":"x"}', 403, true],
        ["prefs-404", "PATCH", "/api/v1/users/99999999/preferences", "/api/v1/users/:id/preferences", bearer(admin.token), '{"theme":"x"}', 404, true],
        ["prefs-422-keys", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), fiftyKeys, 422, true],
        ["user-403", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(v.token), '{"full_name":"X"}', 403, true],
        ["user-404", "PATCH", "/api/v1/users/99999999", "/api/v1/users/:id", bearer(admin.token), '{"full_name":"X"}', 404, true],
        ["user-409", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), '{"email":"FAST-V@example.com"}', 409, true],
        ["post-403", "POST", `/api/v1/users/${v.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":"t","content":"c"}', 403, true],
        // The caller's refusal comes before anything of its body: a body the parser refuses is not read.
        ["post-403-big-int", "POST", `/api/v1/users/${v.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":9007199254740993,"content":"x"}', 403, false],
        ["post-403-bad-json", "POST", `/api/v1/users/${v.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":', 403, false],
        ["prefs-403-surrogate", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(v.token), '{"a":"\\ud800"}', 403, false],
        ["user-403-deep", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(v.token), "[".repeat(200) + "]".repeat(200), 403, false],
        ["user-401-revoked-big-int", "PATCH", `/api/v1/users/${revoked.id}`, "/api/v1/users/:id", bearer(revoked.token), '{"full_name":9007199254740993}', 401, false],
        ["post-401-revoked-bad-json", "POST", `/api/v1/users/${revoked.id}/posts`, "/api/v1/users/:id/posts", bearer(revoked.token), "{not json", 401, false],
        ["prefs-401-revoked-surrogate", "PATCH", `/api/v1/users/${revoked.id}/preferences`, "/api/v1/users/:id/preferences", bearer(revoked.token), '{"a":"\\udc00"}', 401, false],
        // Declined before the write: the app answers.
        ["prefs-401", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", { "content-type": "application/json" }, '{"theme":"x"}', 401, false],
        ["user-401-forged", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token + "x"), '{"full_name":"X"}', 401, false],
        ["prefs-422-value", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), '{"theme":{"a":1}}', 422, false],
        ["user-422-unknown", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), '{"is_admin":true}', 422, false],
        ["user-422-empty", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), "{}", 422, false],
        ["post-422-title", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":"","content":"c"}', 422, false],
        ["post-422-id", "POST", "/api/v1/users/0/posts", "/api/v1/users/:id/posts", bearer(u.token), '{"title":"t","content":"c"}', 422, false],
        // Numbers not kept as written, text of white space only, lengths counted in characters (strict-input.test.ts).
        ["prefs-422-big-int", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), '{"n":9007199254740993}', 422, false],
        ["prefs-422-underflow", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), '{"n":1.5e-400}', 422, false],
        ["user-422-text-big-int", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), '{"full_name":9007199254740993}', 422, false],
        ["post-422-extra-big-int", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":"t","content":"c","extra":9007199254740993}', 422, false],
        ["user-422-blank", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), '{"full_name":"  "}', 422, false],
        ["post-422-blank-title", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":"\\t ","content":"c"}', 422, false],
        ["user-422-joiner", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), JSON.stringify({ full_name: "\u200D" }), 422, false],
        ["user-422-hangul-filler", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), JSON.stringify({ full_name: "\u3164" }), 422, false],
        ["post-422-tag-title", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), JSON.stringify({ title: "\u{E0020}", content: "c" }), 422, false],
        ["post-422-mark-title", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), JSON.stringify({ title: "\u0301", content: "c" }), 422, false],
        ["user-422-101-emoji", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), JSON.stringify({ full_name: "\u{1F600}".repeat(101) }), 422, false],
        ["user-100-emoji", "PATCH", `/api/v1/users/${u.id}`, "/api/v1/users/:id", bearer(u.token), JSON.stringify({ full_name: "\u{1F600}".repeat(100) }), 200, true],
        ["prefs-600-emoji", "PATCH", `/api/v1/users/${u.id}/preferences`, "/api/v1/users/:id/preferences", bearer(u.token), JSON.stringify({ e: "\u{1F600}".repeat(600), n: 9007199254740991 }), 200, true],
        ["post-400", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), '{"title":', 400, false],
        ["post-415", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", { ...bearer(u.token), "content-type": "text/plain" }, '{"title":"t","content":"c"}', 415, false],
        ["post-413", "POST", `/api/v1/users/${u.id}/posts`, "/api/v1/users/:id/posts", bearer(u.token), JSON.stringify({ title: "t", content: "c".repeat(5000) }), 413, false],
      ];
      for (const [name, method, path, route, headers, body, status, fast] of cases) {
        const before = await s.metrics();
        const fastWay = await rawRequest(s.instance.url, method, path, { ...headers, "x-request-id": `${name}-fast` }, body);
        const mid = await s.metrics();
        const appWay = await rawRequest(s.instance.url, method, path, { ...headers, ...APP_WAY, "x-request-id": `${name}-app` }, body);
        const after = await s.metrics();
        expect({ name, status: fastWay.status }).toEqual({ name, status });
        expect({ name, ...comparableWrite(fastWay) }).toEqual({ name, ...comparableWrite(appWay) });
        expect({ name, rid: fastWay.headers["x-request-id"] }).toEqual({ name, rid: `${name}-fast` });
        // Answered in front of the app (counted as such when it succeeds) or declined to it.
        expect({ name, fast: fastAnswers(mid) - fastAnswers(before) }).toEqual({ name, fast: fast && status < 400 ? 1 : 0 });
        expect({ name, fastAfter: fastAnswers(after) - fastAnswers(mid) }).toEqual({ name, fastAfter: 0 });
        expect({ name, counted: [requestsCounted(mid, route, status, method) - requestsCounted(before, route, status, method), requestsCounted(after, route, status, method) - requestsCounted(mid, route, status, method)] }).toEqual({
          name,
          counted: [1, 1],
        });
      }
      await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
      const parsed = lines.map((l) => JSON.parse(l));
      const pick = (rid: string) => {
        const mine = parsed.filter((l) => l.request_id === rid);
        expect({ rid, lines: mine.map((l) => l.msg) }).toEqual({ rid, lines: ["request"] });
        const { time: _t, duration_ms: duration, request_id: _r, ...rest } = mine[0];
        expect(typeof duration).toBe("number");
        return rest;
      };
      for (const [name, method, , route, , , status] of cases) {
        const line = pick(`${name}-fast`);
        expect(line).toEqual({ level: "info", msg: "request", method, route, status });
        expect(pick(`${name}-app`)).toEqual(line);
      }
    } finally {
      await s.stop();
    }
  }, 90_000);

  test("429: fast writes count toward the write limit once, and the refusal is the app's problem", async () => {
    const lines: string[] = [];
    const s = await start({ ...env, RATE_LIMIT_WRITE_PER_MINUTE: "3" }, lines);
    try {
      const u = await s.account("fast-limit@example.com");
      const patch = (extra: Record<string, string> = {}, body = '{"theme":"dark"}') =>
        rawRequest(s.instance.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { authorization: `Bearer ${u.token}`, "content-type": "application/json", ...extra }, body);
      const before = fastAnswers(await s.metrics());
      // An invalid body declines after the decision: the app takes it as decided, and counts it no second time.
      const refused = await patch({}, '{"theme":[1]}');
      const answers = [refused, await patch(), await patch()];
      expect(answers.map((r) => [r.status, r.headers.ratelimit])).toEqual([
        [422, undefined],
        [200, '"write";r=1;t=40'],
        [200, '"write";r=0;t=60'],
      ]);
      expect(fastAnswers(await s.metrics())).toBe(before + 2);
      const fastWay = await patch();
      const appWay = await patch(APP_WAY);
      expectLimitedAlike(fastWay, appWay, comparableWrite);
      const text = await s.metrics();
      expect(rateLimited(text)).toBe(2);
      expect(requestsCounted(text, "/api/v1/users/:id/preferences", 429, "PATCH")).toBe(2);
    } finally {
      await s.stop();
    }
  }, 60_000);

  test("every JSON success answer has one content type: fast reads and writes, the app's, cached or not, replayed", async () => {
    const s = await start(env, []);
    try {
      const u = await s.account("fast-type@example.com");
      const admin = await s.account(ADMIN.email);
      const auth = (token: string) => ({ authorization: `Bearer ${token}` });
      const json = { "content-type": "application/json" };
      const read = (path: string, headers: Record<string, string> = {}) => rawRequest(s.instance.url, "GET", path, { ...auth(u.token), ...headers });
      const answers: [string, RawResponse][] = [
        ["post, fast", await rawRequest(s.instance.url, "POST", `/api/v1/users/${u.id}/posts`, { ...auth(u.token), ...json }, '{"title":"t","content":"c"}')],
        ["post, app", await rawRequest(s.instance.url, "POST", `/api/v1/users/${u.id}/posts`, { ...auth(u.token), ...json, ...APP_WAY }, '{"title":"t","content":"c"}')],
        ["prefs, fast", await rawRequest(s.instance.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { ...auth(u.token), ...json }, '{"a":"b"}')],
        ["prefs, replayed", await rawRequest(s.instance.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { ...auth(u.token), ...json, "idempotency-key": "k1" }, '{"a":"c"}')],
        ["prefs, replayed again", await rawRequest(s.instance.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { ...auth(u.token), ...json, "idempotency-key": "k1" }, '{"a":"c"}')],
        ["user, miss", await read(`/api/v1/users/${u.id}`)],
        ["user, hit", await read(`/api/v1/users/${u.id}`)],
        // A declared body (Content-Length: 0) on a GET sends it the app's way (fast-parity.ts APP_WAY).
        ["user, app", await read(`/api/v1/users/${u.id}`, { "content-length": "0" })],
        ["me", await read("/api/v1/users/me")],
        ["posts", await read(`/api/v1/users/${u.id}/posts?page=1&limit=10`)],
        ["preferences", await read(`/api/v1/users/${u.id}/preferences`)],
        ["admin list", await rawRequest(s.instance.url, "GET", "/api/v1/users?page=1&limit=5", auth(admin.token))],
        ["login", await rawRequest(s.instance.url, "POST", "/api/v1/auth/login", json, JSON.stringify({ email: ADMIN.email, password: ADMIN.password }))],
        ["health", await rawRequest(s.instance.url, "GET", "/health", {})],
        ["cache stats", await rawRequest(s.instance.url, "GET", "/cache/stats", auth(admin.token))],
        ["openapi", await rawRequest(s.instance.url, "GET", "/swagger/json", {})],
      ];
      expect(answers.map(([name, r]) => [name, r.status < 300, r.headers["content-type"]])).toEqual(
        answers.map(([name]) => [name, true, "application/json;charset=utf-8"]),
      );
      expect(answers.find(([name]) => name === "prefs, replayed again")![1].headers["idempotent-replayed"]).toBe("true");
      expect(answers.find(([name]) => name === "user, hit")![1].headers["x-cache"]).toStartWith("hit");
    } finally {
      await s.stop();
    }
  });

  test("a write with an Idempotency-Key goes the app's way: kept and replayed", async () => {
    const s = await start(env, []);
    try {
      const u = await s.account("fast-idem@example.com");
      const send = (key: string) =>
        rawRequest(
          s.instance.url,
          "POST",
          `/api/v1/users/${u.id}/posts`,
          { authorization: `Bearer ${u.token}`, "content-type": "application/json", "idempotency-key": key },
          '{"title":"once","content":"only once"}',
        );
      const before = fastAnswers(await s.metrics());
      const first = await send("post-1");
      const again = await send("post-1");
      expect([first.status, again.status, again.headers["idempotent-replayed"]]).toEqual([201, 201, "true"]);
      expect(again.body).toBe(first.body);
      expect(fastAnswers(await s.metrics())).toBe(before);
      const page = (await (
        await fetch(`${s.instance.url}/api/v1/users/${u.id}/posts`, { headers: { authorization: `Bearer ${u.token}` } })
      ).json()) as { total: number };
      expect(page.total).toBe(1);
    } finally {
      await s.stop();
    }
  }, 60_000);
});

test("a served write with REDIS_URL invalidates the cached reads like the app's", async () => {
  const s = await start({ REDIS_URL }, []);
  try {
    const u = await s.account("fast-cache@example.com");
    const auth = { authorization: `Bearer ${u.token}` };
    const read = async () => (await rawRequest(s.instance.url, "GET", `/api/v1/users/${u.id}/preferences`, auth)).body;
    expect(await read()).toBe("{}");
    const patched = await rawRequest(s.instance.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { ...auth, "content-type": "application/json" }, '{"theme":"dark"}');
    expect(patched.status).toBe(200);
    expect(await read()).toBe('{"theme":"dark"}');
  } finally {
    await s.stop();
  }
}, 60_000);

test("a write lock held by another process: the fast write's 503 is the app's, with Retry-After, and nothing is stored", async () => {
  const lines: string[] = [];
  const s = await start({ DB_WRITE_WAIT_MS: "300", CACHE_ENABLED: "false" }, lines);
  try {
    const u = await s.account("fast-locked@example.com");
    const headers = { authorization: `Bearer ${u.token}`, "content-type": "application/json" };
    const send = (extra: Record<string, string>) => rawRequest(s.instance.url, "POST", `/api/v1/users/${u.id}/posts`, { ...headers, ...extra }, '{"title":"t","content":"c"}');
    const lock = await holdWriteLock(s.instance.deps.database.path!);
    let fastWay: RawResponse;
    let appWay: RawResponse;
    try {
      fastWay = await send({ "x-request-id": "locked-fast" });
      appWay = await send({ ...APP_WAY, "x-request-id": "locked-app" });
    } finally {
      await lock.release();
    }
    expect([fastWay.status, fastWay.headers["retry-after"]]).toEqual([503, "1"]);
    expect(comparableWrite(fastWay)).toEqual(comparableWrite(appWay));
    const page = (await (await fetch(`${s.instance.url}/api/v1/users/${u.id}/posts`, { headers })).json()) as { total: number };
    expect(page.total).toBe(0);
    await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
    const statuses = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request" && String(l.request_id).startsWith("locked-"));
    expect(statuses.map((l) => [l.request_id, l.route, l.status])).toEqual([
      ["locked-fast", "/api/v1/users/:id/posts", 503],
      ["locked-app", "/api/v1/users/:id/posts", 503],
    ]);
  } finally {
    await s.stop();
  }
}, 60_000);

test("a client that closes its connection mid-body gets the app's 400 for a broken body both ways, logged as a request, not as an error", async () => {
  const lines: string[] = [];
  const s = await start({ CACHE_ENABLED: "false" }, lines);
  try {
    const u = await s.account("fast-cut@example.com");
    const port = new URL(s.instance.url).port;
    // Headers, then the start of a body declared (or chunked) longer, then the client closes its side.
    for (const [rid, framing] of [
      ["cut-fast", 'Content-Length: 100\r\n\r\n{"theme":'],
      ["cut-app", 'Transfer-Encoding: chunked\r\n\r\n9\r\n{"theme":\r\n'],
    ]) {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port: Number(port), socket: { data() {} } });
      socket.write(`PATCH /api/v1/users/${u.id}/preferences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\nContent-Type: application/json\r\nx-request-id: ${rid}\r\n${framing}`);
      await Bun.sleep(200);
      socket.shutdown();
      await waitUntil(() => lines.some((l) => l.includes(`"request_id":"${rid}"`)), 10_000, `the line of ${rid}`);
      socket.end();
    }
    const mine = lines.map((l) => JSON.parse(l)).filter((l) => String(l.request_id).startsWith("cut-"));
    expect(mine.map((l) => [l.level, l.msg, l.request_id, l.status])).toEqual([
      ["info", "request", "cut-fast", 400],
      ["info", "request", "cut-app", 400],
    ]);
  } finally {
    await s.stop();
  }
}, 60_000);

describe.each(WIRINGS)("a caller the route refuses is answered before its body arrives, over $wiring", ({ env }) => {
  test("a revoked token (401) or another user / a non-admin (403), on fast writes and the app's other writes: the answer comes while the body is still being sent", async () => {
    const s = await start(env, []);
    try {
      const u = await s.account("early-u@example.com");
      const v = await s.account("early-v@example.com");
      const revoked = await s.account("early-revoked@example.com");
      expect((await fetch(`${s.instance.url}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${revoked.token}` } })).status).toBe(204);
      const port = Number(new URL(s.instance.url).port);
      const cases: [string, string, string, number][] = [
        ["POST", `/api/v1/users/${v.id}/posts`, u.token, 403],
        ["PATCH", `/api/v1/users/${v.id}/preferences`, u.token, 403],
        ["PATCH", `/api/v1/users/${v.id}`, u.token, 403],
        ["DELETE", `/api/v1/users/${v.id}`, u.token, 403],
        ["POST", "/api/v1/admin/preferences/bulk", u.token, 403],
        ["POST", "/api/v1/jobs/status", u.token, 403],
        ["POST", `/api/v1/users/${revoked.id}/posts`, revoked.token, 401],
        ["POST", "/api/v1/auth/logout", revoked.token, 401],
        ["POST", "/api/v1/admin/preferences/bulk", revoked.token, 401],
      ];
      for (const [method, path, token, status] of cases) {
        let received = "";
        const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data(_s, d) { received += d.toString(); } } });
        // A body declared longer than what is sent: the rest never comes while the answer is awaited.
        socket.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title":9007199254740993,`);
        // Well within the time a body may take to arrive (BODY_ARRIVAL_MS), after which it would be refused anyway.
        await waitUntil(() => received.includes("\r\n\r\n"), 4_000, `the answer to ${method} ${path}`).catch(() => {});
        socket.end();
        expect({ method, path, answer: received.split("\r\n")[0] }).toEqual({ method, path, answer: `HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : "Forbidden"}` });
      }
      // The token owner's own account and sessions are untouched.
      expect((await fetch(`${s.instance.url}/api/v1/users/me`, { headers: { authorization: `Bearer ${v.token}` } })).status).toBe(200);
    } finally {
      await s.stop();
    }
  }, 90_000);
});
