// Concurrent writes in one process: libSQL's local client would deadlock interleaved write transactions
// (serialize-writes.ts); these go through the API as a burst of clients would send them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@libsql/client";
import { join } from "node:path";
import { isReadOnly, serializeWrites, WriteQueueTimeout } from "../src/platform/db/serialize-writes.ts";
import { makeApp, tempDir, type TestApp } from "./helpers.ts";

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

describe("serializeWrites", () => {
  test("classifies reads and writes", () => {
    for (const sql of ["select 1", "  SELECT * FROM users", "PRAGMA journal_mode", "pragma table_info(users)", "explain select 1"]) {
      expect(isReadOnly(sql)).toBe(true);
    }
    for (const sql of ["insert into t values (1)", "update t set a = 1", "delete from t", "PRAGMA journal_mode=WAL", "with x as (select 1) insert into t select * from x", "BEGIN"]) {
      expect(isReadOnly(sql)).toBe(false);
    }
  });

  test("a write waits for an open transaction, and gives up with a 503-class error after its limit", async () => {
    const raw = createClient({ url: `file:${join(tempDir(), "w.db")}`, timeout: 5_000 });
    const client = serializeWrites(raw, 200);
    await client.execute("CREATE TABLE t (a INTEGER)");
    const tx = await client.transaction("write");
    await tx.execute("INSERT INTO t VALUES (1)");
    const waiting = client.execute("INSERT INTO t VALUES (2)");
    // A read is not queued behind the transaction.
    expect((await client.execute("SELECT count(*) AS n FROM t")).rows[0]!.n).toBe(0);
    const err = await waiting.catch((e) => e);
    expect(err).toBeInstanceOf(WriteQueueTimeout);
    expect(err.status).toBe(503);
    await tx.commit();
    // The abandoned turn passed on: the queue still works.
    await client.execute("INSERT INTO t VALUES (3)");
    expect((await client.execute("SELECT count(*) AS n FROM t")).rows[0]!.n).toBe(2);
    raw.close();
  });
});
