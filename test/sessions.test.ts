// Sessions that mean something: logout, and revocation on password change, deletion and demotion, on every
// instance through the bus, the fast paths included.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { setAdmin } from "../src/modules/users/service.ts";
import { DatabaseUnavailable } from "../src/platform/db/errors.ts";
import { makeApp, REDIS_URL, tempDir, type TestApp, testPrefix, WIRINGS, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const me = async (app: TestApp, token: string) => (await app.request("GET", "/api/v1/users/me", { token })).status;

describe.each(WIRINGS)("the sessions contract over $wiring", ({ env, redis }) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeApp(env);
    expect(t.deps.redis !== null).toBe(redis); // wired as the title says
  });
  afterAll(() => t.close());

  describe("POST /api/v1/auth/logout", () => {
    test("ends the token's session only; the body may be omitted", async () => {
      const u = await t.user();
      const second = await t.login(u.email, "correct-horse");
      expect(await me(t, u.token)).toBe(200);
      const r = await t.request("POST", "/api/v1/auth/logout", { token: u.token });
      expect(r.status).toBe(204);
      expect(await me(t, u.token)).toBe(401);
      expect(await me(t, second)).toBe(200);
      expect((await t.request("POST", "/api/v1/auth/logout", { token: u.token })).status).toBe(401);
    });

    test("{all: true} ends every session of the caller and no one else's", async () => {
      const u = await t.user();
      const other = await t.user();
      const second = await t.login(u.email, "correct-horse");
      expect((await t.request("POST", "/api/v1/auth/logout", { token: second, body: { all: true } })).status).toBe(204);
      expect(await me(t, u.token)).toBe(401);
      expect(await me(t, second)).toBe(401);
      expect(await me(t, other.token)).toBe(200);
      expect(await me(t, await t.login(u.email, "correct-horse"))).toBe(200);
    });

    test("anonymous is 401, a bad body 422", async () => {
      expect((await t.json("POST", "/api/v1/auth/logout", { body: { all: true } })).status).toBe(401);
      const u = await t.user();
      const r = await t.json("POST", "/api/v1/auth/logout", { token: u.token, body: { all: "yes" } });
      expect(r.status).toBe(422);
      expect(await me(t, u.token)).toBe(200);
    });
  });

  describe("revocation", () => {
    test("a password change ends every session of the account", async () => {
      const u = await t.user();
      const second = await t.login(u.email, "correct-horse");
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { password: "a-new-password" } })).status).toBe(200);
      expect(await me(t, u.token)).toBe(401);
      expect(await me(t, second)).toBe(401);
      expect(await me(t, await t.login(u.email, "a-new-password"))).toBe(200);
    });

    test("a password change and the end of the sessions are one write: no second transaction can fail after the password changed", async () => {
      const u = await t.user();
      // Every write transaction after the first of the request meets the write lock held elsewhere.
      const database = t.deps.database;
      const write = database.write;
      let writes = 0;
      database.write = (body) => (++writes === 1 ? write(body) : Promise.reject(new DatabaseUnavailable("busy", "The database is locked by another writer; retry later")));
      let status: number;
      try {
        status = (await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { password: "a-newer-password" } })).status;
      } finally {
        database.write = write;
      }
      expect([status, writes]).toEqual([200, 1]);
      expect(await me(t, u.token)).toBe(401);
      expect(await me(t, await t.login(u.email, "a-newer-password"))).toBe(200);
    });

    test("a deleted user's token reads nothing", async () => {
      const u = await t.user();
      const other = await t.user();
      expect((await t.request("GET", `/api/v1/users/${other.id}`, { token: u.token })).status).toBe(200);
      expect((await t.request("DELETE", `/api/v1/users/${u.id}`, { token: u.token })).status).toBe(204);
      expect((await t.request("GET", `/api/v1/users/${other.id}`, { token: u.token })).status).toBe(401);
      expect(await me(t, u.token)).toBe(401);
    });

    test("a demoted admin keeps the user's rights and loses the admin routes at once", async () => {
      const a = await t.user();
      await setAdmin(t.deps, a.id, true);
      const token = await t.login(a.email, "correct-horse");
      const victim = await t.user();
      expect((await t.request("GET", "/api/v1/users", { token })).status).toBe(200);
      await setAdmin(t.deps, a.id, false);
      expect((await t.request("GET", "/api/v1/users", { token })).status).toBe(403);
      expect((await t.json("PATCH", `/api/v1/users/${victim.id}`, { token, body: { full_name: "pwned" } })).status).toBe(403);
      expect(await me(t, token)).toBe(200);
    });
  });
});

describe("across instances", () => {
  // The bus carries a revocation in milliseconds; a state remembered on its own clock would show as about a
  // second. The bound sits between the two, generous for a loaded machine.
  const BUS_BOUND_MS = 500;

  test("a revocation on one instance is refused by another through the bus, the fast paths included, at once after b loaded the session", async () => {
    const dir = tempDir("sessions-");
    const prefix = testPrefix();
    const env = { REDIS_URL, REDIS_PREFIX: prefix, JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" };
    const a = await serveApp({ ...env, INSTANCE_ID: "sessions-a" }, dir);
    const b = await serveApp({ ...env, INSTANCE_ID: "sessions-b" }, dir);
    try {
      const call = (base: string, method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
        fetch(base + path, {
          method,
          headers: { "content-type": "application/json", ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      const email = `x-${crypto.randomUUID().slice(0, 6)}@example.com`;
      const reg = await (await call(a.url, "POST", "/api/v1/users", undefined, { email, password: "correct-horse", full_name: "X" })).json();
      const login = async () => (await (await call(a.url, "POST", "/api/v1/auth/login", undefined, { email, password: "correct-horse" })).json()).access_token as string;
      const detail = `/api/v1/users/${reg.id}`;
      // The ways b answers a token: the cached-read fast path, the declared-write fast path, and the app's (a
      // write with an Idempotency-Key is always the app's).
      const ways = {
        "fast read": (token: string) => call(b.url, "GET", detail, token),
        "fast write": (token: string) => call(b.url, "PATCH", detail, token, { full_name: "Y" }),
        "the app's way": (token: string) => call(b.url, "PATCH", detail, token, { full_name: "Z" }, { "idempotency-key": crypto.randomUUID() }),
      };
      // Polls b until it refuses the token; how long that took after the revocation began.
      const refusedAfter = async (ask: (token: string) => Promise<Response>, token: string, started: number) => {
        let status = 200;
        while (status === 200 && performance.now() - started < 2_000) {
          status = (await ask(token)).status;
          if (status === 200) await Bun.sleep(10);
        }
        expect(status).toBe(401);
        return Math.round(performance.now() - started);
      };

      for (const [way, ask] of Object.entries(ways)) {
        for (const all of [false, true]) {
          const token = await login();
          // b loads the session's state now, so only the bus can tell it of the revocation that follows at once.
          expect((await ask(token)).status).toBe(200);
          if (way === "fast read") expect((await ask(token)).headers.get("x-cache")).toBe("hit-l1");
          const started = performance.now();
          expect((await call(a.url, "POST", "/api/v1/auth/logout", token, { all })).status).toBe(204);
          const ms = await refusedAfter(ask, token, started);
          console.log(`sessions test: a logout${all ? " {all}" : ""} on one instance refused by the other (${way}) after ${ms} ms`);
          expect(ms).toBeLessThan(BUS_BOUND_MS);
          expect((await call(b.url, "GET", "/api/v1/users/me", token)).status).toBe(401);
        }
      }

      // A password change (every session of the account), on a token b has just loaded. Counted from a's answer:
      // the change hashes the new password first.
      const token = await login();
      expect((await ways["fast read"](token)).status).toBe(200);
      expect((await call(a.url, "PATCH", detail, token, { password: "a-new-password" })).status).toBe(200);
      const ms = await refusedAfter(ways["fast read"], token, performance.now());
      console.log(`sessions test: a password change on one instance refused by the other ${ms} ms after it answered`);
      expect(ms).toBeLessThan(BUS_BOUND_MS);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
