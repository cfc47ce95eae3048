import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, type TestApp, WIRINGS, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

describe.each(WIRINGS)("the posts and preferences contract over $wiring", ({ env, redis }) => {
  let t: TestApp;
  let admin: string;
  beforeAll(async () => {
    t = await makeApp({ ...env, ADMIN_EMAIL: "boss@example.com", ADMIN_PASSWORD: "boss-password" });
    expect(t.deps.redis !== null).toBe(redis); // wired as the title says
    admin = await t.login("boss@example.com", "boss-password");
  });
  afterAll(() => t.close());

  describe("posts", () => {
    test("owner writes a post: 201 PostPublic", async () => {
      const u = await t.user();
      const r = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "Hello", content: "World" } });
      expect(r.status).toBe(201);
      expect(Object.keys(r.body).sort()).toEqual(["content", "created_at", "id", "title", "user_id"]);
      expect(r.body).toMatchObject({ user_id: u.id, title: "Hello", content: "World" });
    });

    test("another user and even an admin get 403, anonymous 401", async () => {
      const u = await t.user();
      const other = await t.user();
      const body = { title: "x", content: "y" };
      expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: other.token, body })).status).toBe(403);
      expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: admin, body })).status).toBe(403);
      expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { body })).status).toBe(401);
    });

    test.each([
      ["empty title", { title: "", content: "c" }, "title"],
      ["title over 200", { title: "t".repeat(201), content: "c" }, "title"],
      ["content over 10,000", { title: "t", content: "c".repeat(10_001) }, "content"],
      ["unknown field", { title: "t", content: "c", pinned: true }, "pinned"],
    ])("%s is 422", async (_n, body, field) => {
      const u = await t.user();
      const r = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body });
      expect(r.status).toBe(422);
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    test("pages are newest first with total; limits are validated; unknown user 404", async () => {
      const u = await t.user();
      for (let i = 1; i <= 5; i++) await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: `t${i}`, content: "" } });
      const p1 = await t.json("GET", `/api/v1/users/${u.id}/posts?page=1&limit=2`, { token: u.token });
      expect(p1.status).toBe(200);
      expect(p1.body).toMatchObject({ page: 1, limit: 2, total: 5 });
      expect(p1.body.items.map((p: { title: string }) => p.title)).toEqual(["t5", "t4"]);
      const p3 = await t.json("GET", `/api/v1/users/${u.id}/posts?page=3&limit=2`, { token: u.token });
      expect(p3.body.items.map((p: { title: string }) => p.title)).toEqual(["t1"]);
      const dflt = await t.json("GET", `/api/v1/users/${u.id}/posts`, { token: u.token });
      expect(dflt.body).toMatchObject({ page: 1, limit: 10, total: 5 });
      expect((await t.json("GET", `/api/v1/users/${u.id}/posts?limit=101`, { token: u.token })).status).toBe(422);
      expect((await t.json("GET", `/api/v1/users/${u.id}/posts?page=0`, { token: u.token })).status).toBe(422);
      expect((await t.json("GET", `/api/v1/users/424242/posts`, { token: u.token })).status).toBe(404);
      expect((await t.json("GET", `/api/v1/users/${u.id}/posts`)).status).toBe(401);
    });

    test("a new post shows at once in the detail and in the pages already read", async () => {
      const u = await t.user();
      await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
      await t.json("GET", `/api/v1/users/${u.id}/posts?limit=5`, { token: u.token });
      await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "fresh", content: "" } });
      expect((await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token })).body.posts[0].title).toBe("fresh");
      expect((await t.json("GET", `/api/v1/users/${u.id}/posts?limit=5`, { token: u.token })).body.items[0].title).toBe("fresh");
    });
  });

  describe("preferences", () => {
    test("merge: set, overwrite, null removes; GET reads it back", async () => {
      const u = await t.user();
      let r = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark", size: 12, beta: true } });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ theme: "dark", size: 12, beta: true });
      r = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "light", beta: null } });
      expect(r.body).toEqual({ theme: "light", size: 12 });
      const g = await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
      expect(g.status).toBe(200);
      expect(g.body).toEqual({ theme: "light", size: 12 });
    });

    test("keys such as __proto__ and constructor are stored and read back like any other", async () => {
      const u = await t.user();
      const path = `/api/v1/users/${u.id}/preferences`;
      const r = await t.request("PATCH", path, { token: u.token, body: '{"__proto__":"x","constructor":"y","theme":"dark"}' });
      expect(r.status).toBe(200);
      const entries = (res: Response) => res.text().then((text) => Object.entries(JSON.parse(text)).sort());
      const expected: [string, unknown][] = [["__proto__", "x"], ["constructor", "y"], ["theme", "dark"]];
      expect(await entries(r)).toEqual(expected);
      expect(await entries(await t.request("GET", path, { token: u.token }))).toEqual(expected);
      const removed = await t.request("PATCH", path, { token: u.token, body: '{"__proto__":null}' });
      expect(await entries(removed)).toEqual(expected.slice(1));
    });

    test("owner and admin may write; another user 403; anonymous 401; any user may read", async () => {
      const u = await t.user();
      const other = await t.user();
      expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: other.token, body: { a: 1 } })).status).toBe(403);
      expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { body: { a: 1 } })).status).toBe(401);
      expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: admin, body: { a: 1 } })).status).toBe(200);
      expect((await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: other.token })).body).toEqual({ a: 1 });
      expect((await t.json("GET", `/api/v1/users/${u.id}/preferences`)).status).toBe(401);
      expect((await t.json("GET", `/api/v1/users/777777/preferences`, { token: u.token })).status).toBe(404);
      expect((await t.json("PATCH", `/api/v1/users/777777/preferences`, { token: admin, body: { a: 1 } })).status).toBe(404);
    });

    test("values other than string, number, boolean or null are 422; more than 50 keys are 422", async () => {
      const u = await t.user();
      const url = `/api/v1/users/${u.id}/preferences`;
      expect((await t.json("PATCH", url, { token: u.token, body: { nested: { a: 1 } } })).status).toBe(422);
      expect((await t.json("PATCH", url, { token: u.token, body: { list: [1] } })).status).toBe(422);
      expect((await t.json("PATCH", url, { token: u.token, body: [1, 2] })).status).toBe(422);
      const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]));
      expect((await t.json("PATCH", url, { token: u.token, body: many })).status).toBe(422);
      const forty = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`a${i}`, i]));
      expect((await t.json("PATCH", url, { token: u.token, body: forty })).status).toBe(200);
      const elevenMore = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`b${i}`, i]));
      const over = await t.json("PATCH", url, { token: u.token, body: elevenMore });
      expect(over.status).toBe(422);
      expect(Object.keys((await t.json("GET", url, { token: u.token })).body)).toHaveLength(40);
    });
  });
});
