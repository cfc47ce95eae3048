// Concurrent writes in one process, through the API as a burst of clients would send them: every write body
// runs whole between BEGIN IMMEDIATE and COMMIT, so none of them waits on another.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, tempDir, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(() => t.close());

describe("concurrent writes through the API", () => {
  test("20 posts at once: all 201, all stored", async () => {
    const u = await t.user();
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: `t${i}`, content: "x" } })),
    );
    expect(rs.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect((await t.json("GET", `/api/v1/users/${u.id}/posts?limit=100`, { token: u.token })).body.total).toBe(20);
  }, 30_000);

  test("10 preference merges at once: none lost", async () => {
    const u = await t.user();
    const rs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { [`k${i}`]: i } })),
    );
    expect(rs.map((r) => r.status)).toEqual(Array(10).fill(200));
    const prefs = (await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body;
    expect(Object.keys(prefs).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  }, 30_000);

  test("registrations, logins and updates interleaved: every one answers 2xx", async () => {
    const users = await Promise.all(Array.from({ length: 4 }, () => t.user()));
    const ops = users.flatMap((u, i) => [
      t.json("POST", "/api/v1/users", { body: { email: `burst${i}@example.com`, password: "password-1", full_name: "B" } }),
      t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: `n${i}` } }),
      t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password: "correct-horse" } }),
      t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "x", content: "y" } }),
    ]);
    const statuses = (await Promise.all(ops)).map((r) => r.status);
    for (const s of statuses) expect(s).toBeLessThan(300);
  }, 30_000);
});
