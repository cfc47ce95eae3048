// The admin user list is an uncached read declared once (users/index.ts userListRead): the app's route and the
// fast answer in front of it (fast-read.ts) come from that declaration and must answer alike.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { rawRequest } from "./support/raw-http.ts";
import { logsSettled } from "./support/wait.ts";
import { APP_WAY, comparable, expectLimitedAlike, expectReadLimitSpent, fastAnswers, parityInstance, rateLimited, requestLine, requestsCounted } from "./support/fast-parity.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
import { t as tb } from "elysia";
import { uncachedRead } from "../src/platform/http/cached-read.ts";
import { fastRead } from "../src/platform/http/fast-read.ts";
import { PageQuery } from "../src/platform/http/models.ts";
import { notFound } from "../src/platform/http/errors.ts";
import { NoCache } from "../src/platform/cache/port.ts";
import type { Auth, Principal } from "../src/platform/http/auth.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { ADMIN_EMAIL: "admin-fast@example.com", ADMIN_PASSWORD: "admin-password-1" };
const ROUTE = "/api/v1/users";

test("an uncached read's fast answer runs its loader every time, synchronously when the loader answers so", async () => {
  const admin: Principal = { userId: 1, sessionId: "s", isAdmin: true } as Principal;
  const auth = { peekPrincipal: () => admin, principal: async () => admin } as unknown as Auth;
  const loads: number[] = [];
  const read = (value: (page: number) => unknown) =>
    uncachedRead({
      path: "",
      auth: "admin",
      query: PageQuery,
      response: tb.Object({}),
      problems: [401, 403],
      detail: { operationId: "listThings", summary: "Things" },
      load: ({ query }) => {
        loads.push(query.page ?? 1);
        return value(query.page ?? 1);
      },
      missing: () => notFound("none"),
    });
  const req = (qs: string) => new Request(`http://localhost/api/v1/things${qs}`);
  const sync = fastRead("/api/v1/things", read((page) => (page === 9 ? null : { page })), new NoCache(), { auth, observe: () => () => {} })!;
  const first = sync(req("?page=2"), {}, 0);
  expect(first).toBeInstanceOf(Response);
  const r = first as Response;
  expect([r.status, r.headers.get("x-cache"), r.headers.get("content-type"), await r.text()]).toEqual([200, null, "application/json;charset=utf-8", '{"page":2}']);
  expect(await (sync(req("?page=2"), {}, 0) as Response).text()).toBe('{"page":2}');
  // Nothing there: the app answers (the declaration's `missing`).
  expect(sync(req("?page=9"), {}, 0)).toBeUndefined();
  const later = fastRead("/api/v1/things", read(async (page) => ({ page })), new NoCache(), { auth, observe: () => () => {} })!;
  const promised = later(req("?page=3"), {}, 0);
  expect(promised).toBeInstanceOf(Promise);
  expect(await (await promised)!.text()).toBe('{"page":3}');
  expect(loads).toEqual([2, 2, 9, 3]);
});

describe("GET /users?page&limit answered in front of the app", () => {
  test("200 both ways: status, body bytes, headers (no x-cache), log line and metrics; 401, 403 and 422 are the app's", async () => {
    const lines: string[] = [];
    const s = await parityInstance(ADMIN, lines);
    try {
      const admin = { authorization: `Bearer ${await s.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD)}` };
      const pages = ["?page=1&limit=2", "", "?limit=1&page=2", "?page=999"];
      for (const [i, qs] of pages.entries()) {
        const before = await s.metrics();
        const fast = await rawRequest(s.instance.url, "GET", ROUTE + qs, { ...admin, "x-request-id": `list-${i}-fast` });
        const app = await rawRequest(s.instance.url, "GET", ROUTE + qs, { ...admin, "x-request-id": `list-${i}-app`, ...APP_WAY });
        const after = await s.metrics();
        expect({ qs, status: fast.status, cache: fast.headers["x-cache"] }).toEqual({ qs, status: 200, cache: undefined });
        expect(comparable(fast)).toEqual(comparable(app));
        expect(fast.headers["x-request-id"]).toBe(`list-${i}-fast`);
        expect({ qs, fast: fastAnswers(after) - fastAnswers(before) }).toEqual({ qs, fast: 1 });
        expect({ qs, counted: requestsCounted(after, ROUTE, 200) - requestsCounted(before, ROUTE, 200) }).toEqual({ qs, counted: 2 });
      }
      const first = JSON.parse((await rawRequest(s.instance.url, "GET", `${ROUTE}?limit=100`, admin)).body) as { items: { id: number; email: string }[]; total: number };
      expect([first.total, first.items.map((u) => u.email).sort()]).toEqual([2, ["admin-fast@example.com", "fast@example.com"]]);
      expect(Object.keys(first.items[0]!)).toEqual(["id", "email", "full_name", "is_active", "is_admin", "created_at", "updated_at"]);
      // Nothing is cached: a registration shows at once.
      await fetch(`${s.instance.url}/api/v1/users`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "late@example.com", password: "password-1", full_name: "Late" }),
      });
      const later = JSON.parse((await rawRequest(s.instance.url, "GET", `${ROUTE}?limit=100`, admin)).body) as { total: number };
      expect(later.total).toBe(3);

      const before = fastAnswers(await s.metrics());
      const user = { authorization: `Bearer ${s.token}` };
      for (const [qs, headers, status] of [
        ["?page=1", {}, 401],
        ["?page=1", { authorization: "Bearer nope" }, 401],
        ["?page=1", user, 403],
        ["?limit=101", admin, 422],
        ["?page=0", admin, 422],
        ["?page=01", admin, 422],
        ["?page=1&x=2", admin, 422],
      ] as const) {
        const fastWay = await rawRequest(s.instance.url, "GET", ROUTE + qs, { ...headers, "x-request-id": `p-${status}` });
        const appWay = await rawRequest(s.instance.url, "GET", ROUTE + qs, { ...headers, "x-request-id": `p-${status}`, ...APP_WAY });
        expect({ qs, status: fastWay.status }).toEqual({ qs, status });
        expect(comparable(fastWay)).toEqual(comparable(appWay));
      }
      expect(fastAnswers(await s.metrics())).toBe(before);

      await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
      for (const i of pages.keys()) {
        const line = requestLine(lines, `list-${i}-fast`);
        expect(line).toEqual({ level: "info", msg: "request", method: "GET", route: ROUTE, status: 200 });
        expect(requestLine(lines, `list-${i}-app`)).toEqual(line);
      }
    } finally {
      await s.stop();
    }
  }, 60_000);

  test("429: fast answers count toward the read limit once, and the refusal is the app's problem", async () => {
    const lines: string[] = [];
    const s = await parityInstance({ ...ADMIN, RATE_LIMIT_READ_PER_MINUTE: "3" }, lines);
    try {
      const get = (extra: Record<string, string> = {}) => rawRequest(s.instance.url, "GET", `${ROUTE}?page=1`, { authorization: `Bearer ${admin}`, ...extra });
      const admin = await s.login(ADMIN.ADMIN_EMAIL, ADMIN.ADMIN_PASSWORD);
      const before = await expectReadLimitSpent(get, s.metrics);
      const fastWay = await get({ "x-request-id": "limited-fast" });
      const appWay = await get({ "x-request-id": "limited-app", ...APP_WAY });
      expectLimitedAlike(fastWay, appWay);
      const text = await s.metrics();
      expect(fastAnswers(text)).toBe(before + 3);
      expect(rateLimited(text)).toBe(2);
      expect(requestsCounted(text, ROUTE, 429)).toBe(2);
      await logsSettled(lines, (rid) => rawRequest(s.instance.url, "GET", "/health/live", { "x-request-id": rid }));
      expect(requestLine(lines, "limited-fast")).toEqual({ level: "info", msg: "request", method: "GET", route: ROUTE, status: 429 });
      expect(requestLine(lines, "limited-app")).toEqual(requestLine(lines, "limited-fast"));
    } finally {
      await s.stop();
    }
  }, 30_000);
});
