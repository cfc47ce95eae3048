// A declared write's fast answer (fast-write.ts), driven directly: what it declines before the write runs (and
// how it hands the app the request, body included), and how it answers once the write has run.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { t } from "elysia";
import type { TSchema } from "@sinclair/typebox";
import { Auth } from "../src/platform/http/auth.ts";
import { Sessions } from "../src/platform/http/sessions.ts";
import { declaredWrite, type WriteRequest } from "../src/platform/http/declared-write.ts";
import { fastWrite } from "../src/platform/http/fast-write.ts";
import { headerPolicy } from "../src/platform/http/headers.ts";
import { signJwt } from "../src/platform/http/jwt.ts";
import { IdParams } from "../src/platform/http/models.ts";
import { forbidden } from "../src/platform/http/errors.ts";
import { DatabaseUnavailable } from "../src/platform/db/errors.ts";
import { MemoryRateLimiter } from "../src/platform/http/rate-limit.ts";
import { requestObserver } from "../src/platform/http/request-context.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
import { memorySessions } from "./support/fast-parity.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const secret = "test-secret-test-secret-test-secret-0123";
const token = signJwt({ sub: "3", sid: "s", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);

async function setup(opts: { primary?: boolean; cors?: boolean; limit?: number } = {}) {
  const { cache, auth } = await memorySessions(secret, "fast-write");
  const calls: WriteRequest[] = [];
  let fail: unknown = null;
  const write = declaredWrite({
    method: "PATCH",
    path: "/:id/things",
    auth: "user",
    params: IdParams,
    body: t.Object({ name: t.String({ minLength: 1 }) }, { additionalProperties: false }),
    status: 200,
    response: t.Object({ name: t.String() }),
    problems: [403],
    detail: { operationId: "patchThing", summary: "A thing" },
    handle: async (r) => {
      calls.push(r);
      if (fail !== null) throw fail;
      return { name: r.body.name };
    },
  });
  const lines: string[] = [];
  const logger = createLogger("info", {}, (l) => lines.push(l));
  const limiter = new MemoryRateLimiter();
  const fast = fastWrite("/api/v1/users/:id/things", write, {
    auth,
    headers: headerPolicy({ corsOrigins: opts.cors ? ["https://app.example"] : [], hstsMaxAge: 0 }),
    rateLimit: opts.limit === undefined ? undefined : { limiter, policy: { name: "write", limit: opts.limit, windowSeconds: 60 } },
    bodyLimit: 1024,
    isPrimary: () => opts.primary ?? true,
    observer: requestObserver(logger),
    logger,
  })!;
  /** A header given as "" is left out. */
  const prepare = (body: string, headers: Record<string, string> = {}, id = "3") => {
    const all = { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(body.length), ...headers };
    const sent = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== ""));
    return fast(new Request(`http://localhost/api/v1/users/${id}/things`, { method: "PATCH", headers: sent, body }), { id }, performance.now());
  };
  /** A header given as "" is left out; a write ready to run is run (as the server does in its turn). */
  const send = async (body: string, headers: Record<string, string> = {}, id = "3"): Promise<Response | Request> => {
    const r = await prepare(body, headers, id);
    return typeof r === "function" ? r() : r;
  };
  return { send, prepare, calls, lines, limiter, failWith: (err: unknown) => (fail = err), close: () => cache.close() };
}

describe("a declared write's fast answer", () => {
  test("answers a write it can vouch for: the handler's result as JSON, with the app's headers and one log line", async () => {
    const s = await setup();
    const r = await s.send('{"name":"a"}', { "x-request-id": "w-1" });
    expect(r).toBeInstanceOf(Response);
    const res = r as Response;
    expect([res.status, await res.text(), res.headers.get("content-type"), res.headers.get("x-request-id"), res.headers.get("cache-control")]).toEqual([
      200,
      '{"name":"a"}',
      "application/json;charset=utf-8",
      "w-1",
      "no-store",
    ]);
    expect(s.calls.map((c) => [c.params, c.body, c.principal.userId])).toEqual([[{ id: 3 }, { name: "a" }, 3]]);
    expect(s.lines.map((l) => JSON.parse(l)).map((l) => [l.msg, l.method, l.route, l.status, l.request_id])).toEqual([
      ["request", "PATCH", "/api/v1/users/:id/things", 200, "w-1"],
    ]);
    await s.close();
  });

  test("reads and checks the request before the write lane: what it gives back to run in a turn has not written yet", async () => {
    const s = await setup();
    const ready = await s.prepare('{"name":"a"}');
    expect(typeof ready).toBe("function");
    expect([s.calls, s.lines]).toEqual([[], []]);
    const res = await (ready as () => Promise<Response>)();
    expect([res.status, s.calls.length]).toEqual([200, 1]);
    await s.close();
  });

  test("declines, untouched and before the write, what the app must answer", async () => {
    const s = await setup({ cors: true });
    const declined: [string, Promise<Response | Request>][] = [
      ["Idempotency-Key", s.send('{"name":"a"}', { "idempotency-key": "k" })],
      ["Origin the headers depend on", s.send('{"name":"a"}', { origin: "https://app.example" })],
      ["no Content-Length", s.send('{"name":"a"}', { "content-length": "" })],
      ["over the body limit", s.send('{"name":"a"}', { "content-length": "5000" })],
      ["no token", s.send('{"name":"a"}', { authorization: "" })],
      ["a forged token", s.send('{"name":"a"}', { authorization: `Bearer ${token}x` })],
      ["an id that is not canonical", s.send('{"name":"a"}', {}, "03")],
      ["a compressed body (the app answers 415)", s.send('{"name":"a"}', { "content-encoding": "br" })],
    ];
    for (const [why, answer] of declined) {
      const r = await answer;
      expect({ why, declined: r instanceof Request, bodyLeft: r instanceof Request ? await r.text() : null }).toEqual({ why, declined: true, bodyLeft: '{"name":"a"}' });
    }
    const replica = await setup({ primary: false });
    expect(await replica.send('{"name":"a"}')).toBeInstanceOf(Request);
    expect([s.calls, replica.calls, s.lines, replica.lines]).toEqual([[], [], [], []]);
    await s.close();
    await replica.close();
  });

  test("a body it read and the app must refuse goes to the app as a copy holding the same bytes", async () => {
    const s = await setup();
    for (const body of ['{"name":""}', '{"name":"a","extra":1}', '{"name":', "[1]", '{"name":"\\ud800"}']) {
      const r = await s.send(body);
      expect(r).toBeInstanceOf(Request);
      expect({ body, left: await (r as Request).text() }).toEqual({ body, left: body });
    }
    const textPlain = await s.send('{"name":"a"}', { "content-type": "text/plain" });
    expect(await (textPlain as Request).text()).toBe('{"name":"a"}');
    expect(s.calls).toEqual([]);
    await s.close();
  });

  test("the write limit: a refusal and a decision taken before a decline go to the app; a success carries RateLimit", async () => {
    const s = await setup({ limit: 2 });
    const ok = (await s.send('{"name":"a"}')) as Response;
    expect(ok.headers.get("ratelimit")).toMatch(/^"write";r=1;t=\d+$/);
    // Invalid: declined after its decision was taken (the app is handed it).
    expect(await s.send('{"name":""}')).toBeInstanceOf(Request);
    expect(await s.send('{"name":"b"}')).toBeInstanceOf(Request);
    expect(s.limiter.stats().limited).toBe(1);
    expect(s.calls).toHaveLength(1);
    await s.close();
  });

  test("a failure before the body is read (loading the session, the write limit) declines: the app meets it and answers it", async () => {
    const s = await setup({ limit: 5 });
    // A session not in memory is loaded from this setup's database, which there is none of: the load throws.
    const unknownSession = signJwt({ sub: "3", sid: "not-in-memory", adm: false, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, secret);
    const loadFailed = await s.send('{"name":"a"}', { authorization: `Bearer ${unknownSession}` });
    expect(loadFailed).toBeInstanceOf(Request);
    expect(await (loadFailed as Request).text()).toBe('{"name":"a"}');
    s.limiter.shared = () => Promise.reject(new Error("the limiter's store is down"));
    const limitFailed = await s.send('{"name":"a"}');
    expect(limitFailed).toBeInstanceOf(Request);
    expect(await (limitFailed as Request).text()).toBe('{"name":"a"}');
    expect([s.calls, s.lines]).toEqual([[], []]);
    await s.close();
  });

  test("once the write has run, its errors are answered as the app's onError answers them", async () => {
    const s = await setup();
    s.failWith(forbidden("Neither the user nor an administrator"));
    const denied = (await s.send('{"name":"a"}', { "x-request-id": "w-403" })) as Response;
    expect([denied.status, denied.headers.get("content-type"), denied.headers.get("x-request-id"), await denied.json()]).toEqual([
      403,
      "application/problem+json",
      "w-403",
      { type: "https://neodyme-edge.dev/problems/forbidden", title: "Forbidden", status: 403, detail: "Neither the user nor an administrator" },
    ]);
    s.failWith(new DatabaseUnavailable("busy", "The database is locked by another writer; retry later"));
    const busy = (await s.send('{"name":"a"}')) as Response;
    expect([busy.status, busy.headers.get("retry-after")]).toEqual([503, "1"]);
    s.failWith(new Error("a defect"));
    const broken = (await s.send('{"name":"a"}', { "x-request-id": "w-500" })) as Response;
    expect(broken.status).toBe(500);
    const logged = s.lines.map((l) => JSON.parse(l));
    expect(logged.filter((l) => l.msg === "unhandled error").map((l) => [l.request_id, l.error.message])).toEqual([["w-500", "a defect"]]);
    expect(logged.filter((l) => l.msg === "request").map((l) => l.status)).toEqual([403, 503, 500]);
    await s.close();
  });
});

test("a write whose body the app would change before the handler (a default, a transform) gets no fast answer", () => {
  const logger = createLogger("silent");
  const opts = { auth: new Auth(secret, undefined as unknown as Sessions), bodyLimit: 1024, isPrimary: () => true, observer: requestObserver(logger), logger };
  const withBody = (body: TSchema) =>
    fastWrite(
      "/api/v1/users/:id/things",
      declaredWrite({ method: "POST", path: "/:id/things", auth: "user", params: IdParams, body, status: 201, response: t.Object({}), problems: [], detail: { operationId: "x", summary: "x" }, handle: async () => ({}) }),
      opts,
    );
  expect(withBody(t.Object({ name: t.String() }))).not.toBeNull();
  expect(withBody(t.Object({ name: t.String({ default: "n" }) }))).toBeNull();
  expect(withBody(t.Object({ n: t.Transform(t.String()).Decode((v) => v.length).Encode(String) }))).toBeNull();
});
