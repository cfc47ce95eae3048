// An Idempotency-Key while another process holds SQLite's write lock: the key's claim is a write like any other,
// so it answers the same 503 with Retry-After (never a 500), and a retry once the lock is gone runs; a request
// refused before its key is claimed (403, 422) answers at once, without waiting for the lock, another user's id
// on an owner route included. On both drivers.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { holdWriteLock } from "./support/sqlite-lock.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

for (const driver of ["bun:sqlite", "libsql"] as const) {
  describe(`a keyed write under a lock held elsewhere (${driver})`, () => {
    let t: TestApp;
    let u: { id: number; token: string };
    let admin: { id: number; token: string };
    beforeAll(async () => {
      t = await makeApp({ DATABASE_DRIVER: driver, CACHE_ENABLED: "false", DB_WRITE_WAIT_MS: "300" });
      u = await t.user();
      admin = await t.user();
    });
    afterAll(() => t.close());

    const patch = (key: string, id: number, body: unknown) =>
      t.json("PATCH", `/api/v1/users/${id}/preferences`, { token: u.token, body, headers: { "idempotency-key": key } });

    test("answers 503 with Retry-After, keeps nothing, and the retry after the lock goes runs", async () => {
      const key = `locked-${driver}`;
      const lock = await holdWriteLock(t.deps.database.path!);
      let locked;
      try {
        locked = await patch(key, u.id, { theme: "dark" });
      } finally {
        await lock.release();
      }
      expect(locked.status).toBe(503);
      expect(locked.res.headers.get("content-type")).toBe("application/problem+json");
      expect(locked.res.headers.get("retry-after")).toBe("1");
      const retry = await patch(key, u.id, { theme: "dark" });
      expect(retry.status).toBe(200);
      expect(retry.body).toEqual({ theme: "dark" });
      expect(retry.res.headers.get("idempotent-replayed")).toBeNull();
      const again = await patch(key, u.id, { theme: "dark" });
      expect(again.status).toBe(200);
      expect(again.res.headers.get("idempotent-replayed")).toBe("true");
    });

    test("a kept answer is replayed while the lock is held (reading it takes no write)", async () => {
      const key = `kept-${driver}`;
      expect((await patch(key, u.id, { lang: "fr" })).status).toBe(200);
      const lock = await holdWriteLock(t.deps.database.path!);
      try {
        const replay = await patch(key, u.id, { lang: "fr" });
        expect(replay.status).toBe(200);
        expect(replay.res.headers.get("idempotent-replayed")).toBe("true");
      } finally {
        await lock.release();
      }
    });

    test("a 401 or 422 is answered before the key is claimed: no wait for the lock, no row", async () => {
      const rows = async () => Number((await t.deps.database.client.execute("SELECT count(*) AS n FROM idempotency_keys")).rows[0]!.n);
      const before = await rows();
      const lock = await holdWriteLock(t.deps.database.path!);
      try {
        const invalid = await patch(`invalid-${driver}`, u.id, { nested: [1] });
        expect(invalid.status).toBe(422);
        const anonymous = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { body: { a: "1" }, headers: { "idempotency-key": `anon-${driver}` } });
        expect(anonymous.status).toBe(401);
        const notAdmin = await t.json("POST", "/api/v1/admin/preferences/bulk", {
          token: admin.token,
          body: { user_ids: [u.id], preference_updates: { a: "1" } },
          headers: { "idempotency-key": `bulk-${driver}` },
        });
        expect(notAdmin.status).toBe(403);
      } finally {
        await lock.release();
      }
      expect(await rows()).toBe(before);
    });

    test("another user's id is 403 before the key is claimed, from the route's level: no wait for the lock, no row", async () => {
      const rows = async () => Number((await t.deps.database.client.execute("SELECT count(*) AS n FROM idempotency_keys")).rows[0]!.n);
      const before = await rows();
      const other = admin; // an ordinary user, despite the name: not an administrator
      const lock = await holdWriteLock(t.deps.database.path!);
      const answers: number[] = [];
      try {
        const keyed = (method: string, path: string, body: unknown, key: string) =>
          t.json(method, path, { token: u.token, body, headers: { "idempotency-key": `${key}-${driver}` } });
        for (const r of [
          await keyed("PATCH", `/api/v1/users/${other.id}/preferences`, { theme: "dark" }, "others-prefs"),
          await keyed("PATCH", `/api/v1/users/${other.id}`, { full_name: "Not Mine" }, "others-account"),
          await keyed("POST", `/api/v1/users/${other.id}/posts`, { title: "t", content: "c" }, "others-post"),
        ]) {
          expect(r.res.headers.get("content-type")).toBe("application/problem+json");
          answers.push(r.status);
        }
      } finally {
        await lock.release();
      }
      expect(answers).toEqual([403, 403, 403]);
      expect(await rows()).toBe(before);
    });
  });
}
