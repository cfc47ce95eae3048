// Idempotency-Key as an attacker meets it: keys are scoped per caller (an anonymous caller by its client IP), and a
// key already taken is answered only after what a new request meets first: the rate limits, the session, the
// caller's current rights. The contract's behaviour of the key itself is in idempotency.test.ts.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { setAdmin } from "../src/modules/users/service.ts";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const apps: TestApp[] = [];
afterAll(() => Promise.all(apps.map((a) => a.close())));

/** An app that takes the client's address from `x-client-ip`, so one process can play several clients. */
async function app(overrides: Record<string, string> = {}) {
  const a = await makeApp({ CRON_ENABLED: "false", CLIENT_IP_HEADER: "x-client-ip", ...overrides });
  apps.push(a);
  return a;
}

const register = (a: TestApp, ip: string, key: string, email: string, fullName = "Anon") =>
  a.request("POST", "/api/v1/users", {
    body: { email, password: "correct-horse", full_name: fullName },
    headers: { "idempotency-key": key, "x-client-ip": ip },
  });

describe("anonymous callers' keys are their own", () => {
  test("another client IP's same key and body is not replayed: it runs (and meets the taken email)", async () => {
    const a = await app();
    const first = await register(a, "203.0.113.1", "reg-shared", "mine@example.com");
    expect(first.status).toBe(201);
    const same = await register(a, "203.0.113.1", "reg-shared", "mine@example.com");
    expect(same.headers.get("idempotent-replayed")).toBe("true");
    const stranger = await register(a, "198.51.100.7", "reg-shared", "mine@example.com");
    expect(stranger.status).toBe(409);
    expect(stranger.headers.get("idempotent-replayed")).toBeNull();
  });

  test("a stranger cannot take a key first: its use of the key does not turn the owner's request into a 422", async () => {
    const a = await app();
    expect((await register(a, "198.51.100.8", "reg-squat", "squatter@example.com")).status).toBe(201);
    const owner = await register(a, "203.0.113.2", "reg-squat", "owner@example.com");
    expect(owner.status).toBe(201);
    expect(owner.headers.get("idempotent-replayed")).toBeNull();
  });
});

describe("a replay meets what a new request meets", () => {
  test("a demoted admin's retry of an admin answer is not replayed: it runs with the rights it has now (403)", async () => {
    const a = await app();
    const admin = await a.user();
    await setAdmin(a.deps, admin.id, true);
    const token = await a.login(admin.email, "correct-horse");
    const victim = await a.user();
    const path = `/api/v1/users/${victim.id}`;
    const h = { "idempotency-key": "admin-edit" };
    const first = await a.json("PATCH", path, { token, body: { full_name: "Renamed" }, headers: h });
    expect(first.status).toBe(200);
    const again = await a.request("PATCH", path, { token, body: { full_name: "Renamed" }, headers: h });
    expect(again.headers.get("idempotent-replayed")).toBe("true");

    await setAdmin(a.deps, admin.id, false);
    const demoted = await a.json("PATCH", path, { token, body: { full_name: "Renamed" }, headers: h });
    expect(demoted.status).toBe(403);
    expect(demoted.res.headers.get("idempotent-replayed")).toBeNull();
    // Admin-only routes refuse it before anything of the key is looked at.
    const bulk = await a.request("POST", "/api/v1/admin/preferences/bulk", { token, body: { user_ids: [victim.id], preferences: { a: 1 } }, headers: h });
    expect(bulk.status).toBe(403);
    // What the same token does on its own account is still replayed.
    const own = `/api/v1/users/${admin.id}/preferences`;
    const mine = { "idempotency-key": "own-prefs" };
    expect((await a.request("PATCH", own, { token, body: { a: 1 }, headers: mine })).status).toBe(200);
    expect((await a.request("PATCH", own, { token, body: { a: 1 }, headers: mine })).headers.get("idempotent-replayed")).toBe("true");
  });

  test("replays count against the write limit: past it, a retry is a 429, not the stored answer", async () => {
    const a = await app({ RATE_LIMIT_WRITE_PER_MINUTE: "3" });
    const u = await a.user();
    const path = `/api/v1/users/${u.id}/posts`;
    const h = { "idempotency-key": "post-once" };
    const statuses: (string | number)[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await a.request("POST", path, { token: u.token, body: { title: "t", content: "c" }, headers: h });
      statuses.push(r.headers.get("idempotent-replayed") ? "replayed" : r.status);
    }
    expect(statuses).toEqual([201, "replayed", "replayed", 429, 429]);
    expect((await a.json("GET", path, { token: u.token })).body.total).toBe(1);
  });

  test("anonymous replays count against the registration limit of their client IP", async () => {
    const a = await app({ RATE_LIMIT_REGISTER_PER_HOUR: "2" });
    const statuses: (string | number)[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await register(a, "203.0.113.9", "reg-limit", "limited@example.com");
      statuses.push(r.headers.get("idempotent-replayed") ? "replayed" : r.status);
    }
    expect(statuses).toEqual([201, "replayed", 429]);
    // Another client has its own allowance.
    expect((await register(a, "203.0.113.10", "reg-limit", "other@example.com")).status).toBe(201);
  });

  test("a taken key is answered after the token is checked: an anonymous retry on a signed-in route is 401, not 422 or 409", async () => {
    const a = await app();
    const u = await a.user();
    const path = `/api/v1/users/${u.id}/preferences`;
    expect((await a.request("PATCH", path, { body: { a: 1 }, headers: { "idempotency-key": "\t" } })).status).toBe(401);
    const h = { "idempotency-key": "anon-prefs" };
    expect((await a.request("PATCH", path, { body: { a: 1 }, headers: h })).status).toBe(401);
    expect((await a.request("PATCH", path, { body: { a: 2 }, headers: h })).status).toBe(401);
  });
});
