// Another process holds SQLite's write lock (the sqlite3 shell in BEGIN IMMEDIATE): reads keep answering,
// writes wait off the event loop and then answer 503 with Retry-After, and none of those writes committed.
// A full disk is a 503 too.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { holdWriteLock } from "./support/sqlite-lock.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
let u: { id: number; token: string; email: string };
beforeAll(async () => {
  t = await makeApp({ CACHE_ENABLED: "false", DB_WRITE_WAIT_MS: "400" });
  u = await t.user();
});
afterAll(() => t.close());

const postCount = async () =>
  Number((await t.deps.database.client.execute({ sql: "SELECT count(*) AS n FROM posts WHERE user_id = ?", args: [u.id] })).rows[0]!.n);

describe("a write lock held by another process", () => {
  test("reads answer, writes answer 503 with Retry-After and commit nothing, the event loop keeps turning", async () => {
    const before = await postCount();
    const lock = await holdWriteLock(t.deps.database.path!);
    try {
      const writes = Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: `locked ${i}`, content: "x" } }),
        ),
      );
      const prefs = t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { locked: true } });
      // While the twenty writes wait, the process answers at once.
      const liveStart = performance.now();
      expect((await t.request("GET", "/health/live")).status).toBe(200);
      expect(performance.now() - liveStart).toBeLessThan(1_000);
      const detail = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
      expect(detail.status).toBe(200);
      expect((await t.json("GET", `/api/v1/users/${u.id}/posts`, { token: u.token })).status).toBe(200);

      for (const r of [...(await writes), await prefs]) {
        expect(r.status).toBe(503);
        expect(r.res.headers.get("content-type")).toBe("application/problem+json");
        expect(r.res.headers.get("retry-after")).toBe("1");
        expect(r.body.status).toBe(503);
      }
    } finally {
      await lock.release();
    }
    expect(await postCount()).toBe(before);
    expect((await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body).toEqual({});
    // Once the lock is gone, writes go through again.
    expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "after", content: "x" } })).status).toBe(201);
    expect(await postCount()).toBe(before + 1);
  }, 30_000);
});

describe("a full disk", () => {
  test("a write that does not fit answers 503 with Retry-After and commits nothing", async () => {
    const { client } = t.deps.database;
    const before = await postCount();
    const pages = Number((await client.execute("PRAGMA page_count")).rows[0]!.page_count);
    // The database may not grow: the same condition as a full volume, as SQLite reports it.
    await client.execute(`PRAGMA max_page_count = ${pages}`);
    let accepted = 0;
    let full: { status: number; body: any; res: Response } | undefined;
    try {
      // Posts of 10,000 characters fill the free space of the last pages within a few requests.
      for (let i = 0; i < 50 && !full; i++) {
        const r = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "big", content: "x".repeat(10_000) } });
        if (r.status === 201) accepted++;
        else full = r;
      }
    } finally {
      await client.execute("PRAGMA max_page_count = 1073741823");
    }
    expect(full?.status).toBe(503);
    expect(full!.res.headers.get("retry-after")).toBe("1");
    expect(full!.body.detail).toContain("full");
    // Every 201 is stored, the 503 is not.
    expect(await postCount()).toBe(before + accepted);
  }, 30_000);
});
