// The repositories, migrations and write transactions on each driver. No libSQL server can run here, so the
// libSQL path is exercised by forcing @libsql/client onto a file: URL (the same client code a libsql:// URL uses,
// over a local connection instead of the network).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { openDatabase, type Database, type Driver } from "../src/platform/db/client.ts";
import { DatabaseUnavailable, isUniqueViolation } from "../src/platform/db/errors.ts";
import { MIGRATIONS_FOLDER, runMigrations } from "../src/platform/db/migrate.ts";
import { AsyncInTransaction, q } from "../src/platform/db/tx.ts";
import { writeOutbox } from "../src/platform/jobs/outbox.ts";
import { toUserPublic, userStatements, usersRepo } from "../src/modules/users/repository.ts";
import { postStatements, postsRepo } from "../src/modules/posts/repository.ts";
import { preferenceStatements, preferencesRepo } from "../src/modules/preferences/repository.ts";
import { sql } from "drizzle-orm";
import { users } from "../src/platform/db/schema/index.ts";
import { derive, statement } from "../src/platform/db/statement.ts";
import { sqliteOf } from "../src/platform/db/step.ts";
import { makeApp, tempDir, TEST_TIMEOUT_MS } from "./helpers.ts";
import { holdWriteLock } from "./support/sqlite-lock.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const opened: Database[] = [];
afterAll(() => {
  for (const d of opened) d.close();
});

async function fresh(driver: Driver, writeWaitMs = 3_000): Promise<{ database: Database; file: string }> {
  const file = join(tempDir("drv-"), "app.db");
  const database = await openDatabase(`file:${file}`, { setWal: true, driver, writeWaitMs });
  opened.push(database);
  await runMigrations(database);
  return { database, file };
}

const count = async (d: Database, table: string) => Number((await d.client.execute(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
const journalEntries = () => JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta/_journal.json"), "utf8")).entries.length;

for (const driver of ["bun:sqlite", "libsql"] as const) {
  describe(`driver ${driver}`, () => {
    test("opens the database with the driver asked for", async () => {
      const { database } = await fresh(driver);
      expect(database.driver).toBe(driver);
      expect((await database.client.execute("PRAGMA journal_mode")).rows[0]).toEqual({ journal_mode: "wal" });
      expect((await database.client.execute("PRAGMA foreign_keys")).rows[0]).toEqual({ foreign_keys: 1 });
    });

    test("every connection it reads or writes on runs with the settings: foreign keys on, synchronous NORMAL, no busy wait", async () => {
      const { database } = await fresh(driver);
      const pragmas = ["foreign_keys", "synchronous", "busy_timeout"];
      const want = { foreign_keys: 1, synchronous: 1, busy_timeout: 0 };
      const valueOf = (row: unknown) => Number(Object.values(row as object)[0]);
      const settings = async () => {
        const rows = await Promise.all(pragmas.map((p) => database.client.execute(`PRAGMA ${p}`)));
        return Object.fromEntries(pragmas.map((p, i) => [p, valueOf(rows[i]!.rows[0])]));
      };
      // Calls made in one tick each borrow a connection: a pooling client opens more than one for them.
      for (const s of await Promise.all(Array.from({ length: 4 }, settings))) expect(s).toEqual(want);
      // A write transaction's connection.
      const inTx = await database.write(function* (tx) {
        const out: Record<string, number> = {};
        for (const p of pragmas) out[p] = valueOf(yield* q(tx.get(sql.raw(`PRAGMA ${p}`))));
        return out;
      });
      expect(inTx).toEqual(want);
      // A delete of a user removes its posts (ON DELETE CASCADE) whichever connection runs it.
      const u = await database.write((tx) => q(usersRepo.insert(tx, { email: "fk@example.com", passwordHash: "h", fullName: "F" })));
      await database.write((tx) => q(postsRepo.insert(tx, u.id, "t", "c")));
      await database.write((tx) => q(usersRepo.delete(tx, u.id)));
      expect(await count(database, "posts")).toBe(0);
    });

    test("migrations apply once; a second run changes nothing", async () => {
      const { database } = await fresh(driver);
      expect(await count(database, "__drizzle_migrations")).toBe(journalEntries());
      await runMigrations(database);
      expect(await count(database, "__drizzle_migrations")).toBe(journalEntries());
      for (const table of ["users", "posts", "preferences", "sessions", "outbox", "instances"]) {
        expect(await count(database, table)).toBe(0);
      }
    });

    test("repositories: users, posts, preferences round-trip", async () => {
      const { database } = await fresh(driver);
      const { db } = database;
      const u = await database.write((tx) => q(usersRepo.insert(tx, { email: "a@example.com", passwordHash: "h", fullName: "A" })));
      expect(u).toMatchObject({ email: "a@example.com", fullName: "A", isAdmin: false, isActive: true });
      expect(await usersRepo.findById(db, u.id)).toEqual(u);
      expect(await usersRepo.findByEmail(db, "a@example.com")).toEqual(u);
      expect(await usersRepo.exists(db, u.id)).toBe(true);
      expect(await usersRepo.exists(db, u.id + 1)).toBe(false);
      const renamed = await database.write((tx) => q(usersRepo.update(tx, u.id, { fullName: "B" })));
      expect(renamed).toMatchObject({ email: "a@example.com", fullName: "B", isAdmin: false });
      const promoted = await database.write((tx) => q(usersRepo.update(tx, u.id, { isAdmin: true })));
      expect(promoted).toMatchObject({ fullName: "B", isAdmin: true });
      expect(await database.write((tx) => q(usersRepo.update(tx, 999_999, { fullName: "x" })))).toBeUndefined();

      for (let i = 0; i < 3; i++) await database.write((tx) => q(postsRepo.insert(tx, u.id, `t${i}`, "c")));
      const newest = await postsRepo.newest(db, u.id, 2);
      expect(newest.map((p) => p.title)).toEqual(["t2", "t1"]);
      const page2 = await postsRepo.page(db, u.id, 2, 2);
      expect(page2.total).toBe(3);
      expect(page2.items.map((p) => p.title)).toEqual(["t0"]);

      expect(await preferencesRepo.get(db, u.id)).toEqual({});
      await database.write((tx) => q(preferencesRepo.put(tx, u.id, { theme: "dark", n: 2, on: true })));
      expect(await preferencesRepo.get(db, u.id)).toEqual({ theme: "dark", n: 2, on: true });
      await database.write((tx) => q(preferencesRepo.put(tx, u.id, { theme: "light" })));
      expect(await preferencesRepo.get(db, u.id)).toEqual({ theme: "light" });

      const page = await usersRepo.page(db, 1, 10);
      expect(page.total).toBe(1);
      expect(await database.write((tx) => q(usersRepo.delete(tx, u.id)))).toBe(true);
      expect(await count(database, "posts")).toBe(0);
      expect(await count(database, "preferences")).toBe(0);
    });

    test("the users list: pages by id with deletions in between match a plain ORDER BY id, total is the live count", async () => {
      const { database } = await fresh(driver);
      const ids: number[] = [];
      for (let i = 0; i < 30; i++) {
        ids.push((await database.write((tx) => q(usersRepo.insert(tx, { email: `p${i}@example.com`, passwordHash: "h", fullName: "P" })))).id);
      }
      for (const gone of [ids[0]!, ids[3]!, ids[4]!, ids[10]!, ids[29]!]) await database.write((tx) => q(usersRepo.delete(tx, gone)));
      const live = ids.filter((_, i) => ![0, 3, 4, 10, 29].includes(i));
      for (const limit of [1, 3, 7, 25]) {
        for (let page = 1; page <= Math.ceil(live.length / limit) + 1; page++) {
          const r = await usersRepo.page(database.db, page, limit);
          expect(r.total).toBe(live.length);
          expect(r.items.map((u) => u.id)).toEqual(live.slice((page - 1) * limit, page * limit));
        }
      }
      // The items are the contract's UserPublic of each user, whichever way the driver reads them.
      const shown = await usersRepo.page(database.db, 2, 3);
      const expected = await Promise.all(live.slice(3, 6).map(async (id) => toUserPublic((await usersRepo.findById(database.db, id))!)));
      expect(shown.items).toEqual(expected);
      expect(JSON.stringify(shown.items)).toBe(JSON.stringify(expected));
      // A new user after the deletions lands on the last page.
      const last = await database.write((tx) => q(usersRepo.insert(tx, { email: "late@example.com", passwordHash: "h", fullName: "L" })));
      const r = await usersRepo.page(database.db, 26, 1);
      expect(r.total).toBe(26);
      expect(r.items.map((u) => u.id)).toEqual([last.id]);
    });

    test("a duplicate email is recognised as a unique violation", async () => {
      const { database } = await fresh(driver);
      const v = { email: "dup@example.com", passwordHash: "h", fullName: "D" };
      await database.write((tx) => q(usersRepo.insert(tx, v)));
      const err = await database.write((tx) => q(usersRepo.insert(tx, v))).catch((e) => e);
      expect(isUniqueViolation(err)).toBe(true);
    });

    test("a write body commits whole or not at all: the user and its outbox rows together", async () => {
      const { database } = await fresh(driver);
      const job = (k: string) => ({ type: "t", payload: { k }, idempotencyKey: k });
      await database.write(function* (tx) {
        yield* q(usersRepo.insert(tx, { email: "ok@example.com", passwordHash: "h", fullName: "O" }));
        yield* writeOutbox(tx, [job("a"), job("b")]);
      });
      expect(await count(database, "users")).toBe(1);
      expect(await count(database, "outbox")).toBe(2);

      const err = await database
        .write(function* (tx) {
          yield* q(usersRepo.insert(tx, { email: "half@example.com", passwordHash: "h", fullName: "H" }));
          yield* writeOutbox(tx, [job("c")]);
          // The second statement fails (its key is taken): the first must not stay behind.
          yield* writeOutbox(tx, [job("a")]);
        })
        .catch((e) => e);
      expect(isUniqueViolation(err)).toBe(true);
      expect(await usersRepo.findByEmail(database.db, "half@example.com")).toBeUndefined();
      expect(await count(database, "outbox")).toBe(2);
    });

    test("the app answers through this driver: register, login, post, preferences, detail, the admin list", async () => {
      const t = await makeApp({ DATABASE_DRIVER: driver, ADMIN_EMAIL: "driver-admin@example.com", ADMIN_PASSWORD: "admin-password-1" });
      try {
        expect(t.deps.database.driver).toBe(driver);
        const u = await t.user();
        expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "T", content: "C" } })).status).toBe(201);
        expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark" } })).status).toBe(200);
        const detail = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
        expect(detail.status).toBe(200);
        expect(detail.body.posts.map((p: { title: string }) => p.title)).toEqual(["T"]);
        expect(detail.body.preferences).toEqual({ theme: "dark" });
        const list = await t.json("GET", "/api/v1/users?limit=100", { token: await t.login("driver-admin@example.com", "admin-password-1") });
        expect([list.status, list.body.total, list.body.items.map((i: { id: number }) => i.id).includes(u.id)]).toEqual([200, 2, true]);
        expect(await count(t.deps.database, "outbox")).toBeGreaterThanOrEqual(3);
      } finally {
        await t.close();
      }
    }, 30_000);
  });
}

type DeclaredQuery = {
  toSQL(): { sql: string; params: unknown[] };
  prepare(): { getQuery(): { sql: string }; get(v: object): unknown; all(v: object): unknown; run(v: object): unknown };
};

// Each hot statement is declared once, with Drizzle's builder; on bun:sqlite it runs without Drizzle's per-call work
// (statement.ts). Here each one runs both ways on the same rows: Drizzle's own prepared statement and the derived one.
describe("statements declared once", () => {
  test("on bun:sqlite each repository statement runs Drizzle's SQL, binds what Drizzle binds and returns Drizzle's rows", async () => {
    const { database } = await fresh("bun:sqlite");
    const { db } = database;
    const c = sqliteOf(db)!;
    const ids: number[] = [];
    for (const n of ["a", "b", "c"]) {
      ids.push((await database.write((tx) => q(usersRepo.insert(tx, { email: `${n}@example.com`, passwordHash: "h", fullName: n, isAdmin: n === "b" })))).id);
    }
    const id = ids[1]!;
    for (let i = 0; i < 3; i++) await database.write((tx) => q(postsRepo.insert(tx, id, `t${i}`, "c")));
    await database.write((tx) => q(preferencesRepo.put(tx, id, { theme: "dark", n: 2, on: true }, { theme: 1 })));
    await database.write((tx) => q(usersRepo.delete(tx, ids[0]!)));

    const values = {
      id,
      userId: id,
      email: "b@example.com",
      passwordHash: "h2",
      fullName: "B",
      isAdmin: 1,
      title: "T",
      content: "C",
      data: { theme: "light", on: false },
      keyWrittenAt: { theme: 2 },
      now: "2026-01-01T00:00:00.000Z",
      limit: 2,
      offset: 1,
      from: id,
    };
    // An insert of a taken email would fail both ways and show nothing else.
    const overrides: Record<string, Record<string, unknown>> = { "users.insert": { email: "new@example.com" } };
    const tables = ["users", "posts", "preferences", "table_counts", "user_id_gaps"];
    const dump = () => tables.map((t) => c.query(`SELECT * FROM ${t} ORDER BY rowid`).all());
    /** What a statement returns, and the tables after it, undone afterwards. */
    const outcome = (run: () => unknown) => {
      c.run("BEGIN");
      try {
        return { result: run(), tables: dump() };
      } finally {
        c.run("ROLLBACK");
      }
    };

    const sets = { users: userStatements(db), posts: postStatements(db), preferences: preferenceStatements(db) };
    let compared = 0;
    for (const [set, statements] of Object.entries(sets)) {
      for (const [name, s] of Object.entries(statements)) {
        const query = (s as unknown as { query?: DeclaredQuery }).query!;
        expect(query, `${set}.${name} is a derived statement`).toBeDefined();
        const drizzle = query.prepare();
        const derived = derive(query);
        expect(derived.sql, `${set}.${name}`).toBe(drizzle.getQuery().sql);
        const v = { ...values, ...overrides[`${set}.${name}`] };
        for (const method of derived.columns ? (["all", "get"] as const) : (["run"] as const)) {
          const theirs = outcome(() => drizzle[method](v));
          const ours = outcome(() => s[method](v));
          expect(ours, `${set}.${name}.${method}`).toEqual(theirs);
        }
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(15);
  });

  test("on bun:sqlite get() reads the first row only: a later row that would fail is never read", async () => {
    const { database } = await fresh("bun:sqlite");
    const { db } = database;
    for (const n of ["a", "b"]) await database.write((tx) => q(usersRepo.insert(tx, { email: `${n}@example.com`, passwordHash: "h", fullName: n })));
    // abs() of the smallest integer overflows: SQLite raises it on the step that computes the second row.
    const poisoned = sql<number>`abs(case when ${users.email} = 'b@example.com' then -9223372036854775808 else 1 end)`;
    const query = db.select({ id: users.id, isAdmin: users.isAdmin, n: poisoned.as("n") }).from(users).orderBy(users.id);
    const s = statement(db, query);
    expect(await s.get()).toEqual({ id: 1, isAdmin: false, n: 1 });
    expect(() => s.all()).toThrow(/integer overflow/);
  });

  test.each(["bun:sqlite", "libsql"] as const)("on %s get() and all() read result columns that share a name, as Drizzle's own statement does", async (driver) => {
    const { database } = await fresh(driver);
    const { db } = database;
    for (const n of ["a", "b"]) await database.write((tx) => q(usersRepo.insert(tx, { email: `${n}@example.com`, passwordHash: "h", fullName: n })));
    // Both result columns are named "email" (bun:sqlite's row object would keep only one of them).
    const query = db.select({ email: users.email, shout: sql<string>`upper(${users.email})`.as("email") }).from(users).orderBy(users.id);
    const s = statement(db, query);
    expect(await s.get()).toEqual({ email: "a@example.com", shout: "A@EXAMPLE.COM" });
    expect(await s.get()).toEqual(await query.prepare().get());
    expect(await s.all()).toEqual([
      { email: "a@example.com", shout: "A@EXAMPLE.COM" },
      { email: "b@example.com", shout: "B@EXAMPLE.COM" },
    ]);
    const none = statement(db, db.select({ email: users.email, shout: sql<string>`upper(${users.email})`.as("email") }).from(users).where(sql`0`));
    expect(await none.get()).toBeUndefined();
  });

  test("no feature prepares SQL text of its own on the connection", () => {
    for (const file of new Bun.Glob("src/modules/**/*.ts").scanSync(join(import.meta.dir, ".."))) {
      const text = readFileSync(join(import.meta.dir, "..", file), "utf8");
      expect(text, file).not.toMatch(/sqliteOf\(|\$client|\.prepare<|\.(prepare|query)\(\s*["'`]/);
    }
  });
});

// libSQL on a held lock: test/idempotency-lock.test.ts (a 503, then the retry after the lock goes commits).
describe("bun:sqlite write bodies", () => {
  test("a write waits for another process's lock without blocking the event loop, then answers busy", async () => {
    const { database, file } = await fresh("bun:sqlite", 300);
    const holder = await holdWriteLock(file);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      const started = performance.now();
      const err = await database.write((tx) => q(usersRepo.insert(tx, { email: "w@example.com", passwordHash: "h", fullName: "W" }))).catch((e) => e);
      const waited = performance.now() - started;
      expect(err).toBeInstanceOf(DatabaseUnavailable);
      expect(err.status).toBe(503);
      expect(waited).toBeGreaterThanOrEqual(250);
      // The loop kept turning while the write waited.
      expect(ticks).toBeGreaterThan(5);
      // Reads go on (WAL) while the lock is held.
      expect(await usersRepo.exists(database.db, 1)).toBe(false);
    } finally {
      clearInterval(timer);
      await holder.release();
    }
    expect(await count(database, "users")).toBe(0);
    await database.write((tx) => q(usersRepo.insert(tx, { email: "w@example.com", passwordHash: "h", fullName: "W" })));
    expect(await count(database, "users")).toBe(1);
  });

  test("a body that waits on anything but the database is refused and rolled back (it would commit half its work)", async () => {
    const { database } = await fresh("bun:sqlite");
    const err = await database
      .write(function* (tx) {
        yield* q(usersRepo.insert(tx, { email: "first@example.com", passwordHash: "h", fullName: "F" }));
        yield* q(Bun.sleep(1));
        yield* q(usersRepo.insert(tx, { email: "second@example.com", passwordHash: "h", fullName: "S" }));
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(AsyncInTransaction);
    expect(await count(database, "users")).toBe(0);
  });

  test("a body that throws after writing leaves nothing behind", async () => {
    const { database } = await fresh("bun:sqlite");
    const err = await database
      .write(function* (tx) {
        yield* q(usersRepo.insert(tx, { email: "x@example.com", passwordHash: "h", fullName: "X" }));
        throw new Error("after the insert");
      })
      .catch((e) => e);
    expect(err.message).toBe("after the insert");
    expect(await count(database, "users")).toBe(0);
    // The connection is usable again (the transaction was closed).
    await database.write((tx) => q(usersRepo.insert(tx, { email: "x@example.com", passwordHash: "h", fullName: "X" })));
    expect(await count(database, "users")).toBe(1);
  });
});
