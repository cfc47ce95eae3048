// The users routes as a client sees them: success, each error status, and the owner/other/admin/anonymous matrix.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, type TestApp, WIRINGS, TEST_TIMEOUT_MS } from "./helpers.ts";
import { userDetailParts } from "../src/main/features.ts";
import { getDetail } from "../src/modules/users/service.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "root@example.com", password: "admin-password-1" };

const PUBLIC_KEYS = ["created_at", "email", "full_name", "id", "is_active", "is_admin", "updated_at"];

describe.each(WIRINGS)("the users contract over $wiring", ({ env, redis }) => {
  let t: TestApp;
  let admin: { id: number; token: string };
  beforeAll(async () => {
    t = await makeApp({ ...env, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
    expect(t.deps.redis !== null).toBe(redis); // wired as the title says
    const token = await t.login(ADMIN.email, ADMIN.password);
    const me = await t.json("GET", "/api/v1/users/me", { token });
    admin = { id: me.body.user.id, token };
  });
  afterAll(() => t.close());

  describe("POST /api/v1/users", () => {
    test("registers and answers 201 UserPublic without any hash", async () => {
      const r = await t.json("POST", "/api/v1/users", { body: { email: "Alice@Example.com", password: "password-1", full_name: "Alice" } });
      expect(r.status).toBe(201);
      expect(Object.keys(r.body).sort()).toEqual(PUBLIC_KEYS);
      expect(r.body.email).toBe("alice@example.com");
      expect(r.body.is_admin).toBe(false);
      expect(r.body.is_active).toBe(true);
      expect(new Date(r.body.created_at).toISOString()).toBe(r.body.created_at);
      expect(JSON.stringify(r.body)).not.toContain("argon2");
    });

    test("a duplicate email (any case) is 409 problem+json", async () => {
      const body = { email: "dup@example.com", password: "password-1", full_name: "D" };
      expect((await t.json("POST", "/api/v1/users", { body })).status).toBe(201);
      const r = await t.json("POST", "/api/v1/users", { body: { ...body, email: "DUP@example.com" } });
      expect(r.status).toBe(409);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
      expect(r.body).toMatchObject({ status: 409, title: "Conflict" });
    });

    test.each([
      ["bad email", { email: "not-an-email", password: "password-1", full_name: "X" }, "email"],
      ["short password", { email: "a1@example.com", password: "short", full_name: "X" }, "password"],
      ["long password", { email: "a2@example.com", password: "x".repeat(129), full_name: "X" }, "password"],
      ["empty name", { email: "a3@example.com", password: "password-1", full_name: "" }, "full_name"],
      ["long name", { email: "a4@example.com", password: "password-1", full_name: "n".repeat(101) }, "full_name"],
      ["missing field", { email: "a5@example.com", password: "password-1" }, "full_name"],
      ["unknown field", { email: "a6@example.com", password: "password-1", full_name: "X", is_admin: true }, "is_admin"],
    ])("%s is 422 with the field named", async (_name, body, field) => {
      const r = await t.json("POST", "/api/v1/users", { body });
      expect(r.status).toBe(422);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    test("malformed JSON is 400", async () => {
      const r = await t.json("POST", "/api/v1/users", { body: '{"email": "x@example.com",' });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ status: 400, title: "Bad Request" });
    });

    test("a body over 64 KiB is 413", async () => {
      const r = await t.json("POST", "/api/v1/users", {
        body: { email: "big@example.com", password: "password-1", full_name: "x".repeat(70_000) },
      });
      expect(r.status).toBe(413);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
    });
  });

  describe("reading users", () => {
    test("GET /users/{id} is {user, posts (newest 10), preferences}", async () => {
      const u = await t.user();
      for (let i = 1; i <= 12; i++) {
        const r = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: `p${i}`, content: "c" } });
        expect(r.status).toBe(201);
      }
      await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark" } });
      const other = await t.user();
      const r = await t.json("GET", `/api/v1/users/${u.id}`, { token: other.token });
      expect(r.status).toBe(200);
      expect(r.res.headers.get("content-type")).toContain("application/json");
      expect(Object.keys(r.body).sort()).toEqual(["posts", "preferences", "user"]);
      expect(r.body.user.id).toBe(u.id);
      expect(r.body.posts.map((p: { title: string }) => p.title)).toEqual(["p12", "p11", "p10", "p9", "p8", "p7", "p6", "p5", "p4", "p3"]);
      expect(r.body.preferences).toEqual({ theme: "dark" });
    });

    test("the detail the service gives is typed by its parts: the root's posts and preferences, not unknown", async () => {
      const u = await t.user();
      await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "typed", content: "c" } });
      await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark" } });
      const { value } = await getDetail({ ...t.deps, detail: userDetailParts(t.deps.database) }, u.id);
      // These lines type-check (bunx tsc --noEmit covers test/) only while the parts' types reach UserDetail.
      const titles: string[] = value.posts.map((p) => p.title);
      const theme: string | number | boolean | undefined = value.preferences.theme;
      expect(titles).toEqual(["typed"]);
      expect(theme).toBe("dark");
      expect(value).toEqual((await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token })).body);
    });

    test("GET /users/me is the caller's detail", async () => {
      const u = await t.user();
      const r = await t.json("GET", "/api/v1/users/me", { token: u.token });
      expect(r.status).toBe(200);
      expect(r.body.user).toMatchObject({ id: u.id, email: u.email });
      expect(r.body.posts).toEqual([]);
      expect(r.body.preferences).toEqual({});
    });

    test("unknown id is 404, non-numeric id is 422, no token is 401", async () => {
      const u = await t.user();
      expect((await t.json("GET", "/api/v1/users/999999", { token: u.token })).status).toBe(404);
      expect((await t.json("GET", "/api/v1/users/abc", { token: u.token })).status).toBe(422);
      const anon = await t.json("GET", `/api/v1/users/${u.id}`);
      expect(anon.status).toBe(401);
      expect(anon.res.headers.get("content-type")).toBe("application/problem+json");
    });

    test("GET /users is admin only and paginates", async () => {
      const u = await t.user();
      expect((await t.json("GET", "/api/v1/users", { token: u.token })).status).toBe(403);
      expect((await t.json("GET", "/api/v1/users")).status).toBe(401);
      const r = await t.json("GET", "/api/v1/users?page=1&limit=2", { token: admin.token });
      expect(r.status).toBe(200);
      expect(r.body.items).toHaveLength(2);
      expect(r.body).toMatchObject({ page: 1, limit: 2 });
      expect(r.body.total).toBeGreaterThanOrEqual(2);
      for (const item of r.body.items) expect(Object.keys(item).sort()).toEqual(PUBLIC_KEYS);
      const all = await t.json("GET", `/api/v1/users?page=1&limit=100`, { token: admin.token });
      expect(all.body.items.length).toBe(all.body.total);
    });

    test.each([
      ["page=0", "page"],
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["page=2&limit=500", "limit"],
      ["page=x", "page"],
      ["sort=name", "sort"],
    ])("GET /users?%s is 422 naming %s", async (qs, field) => {
      const r = await t.json("GET", `/api/v1/users?${qs}`, { token: admin.token });
      expect(r.status).toBe(422);
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    test.each([["0"], ["-1"], ["99999999999999999999"], ["abc"]])("GET /users/%s is 422 naming id", async (id) => {
      const r = await t.json("GET", `/api/v1/users/${id}`, { token: admin.token });
      expect(r.status).toBe(422);
      expect(r.body.errors).toEqual([expect.objectContaining({ field: "id" })]);
    });
  });

  describe("PATCH and DELETE /users/{id}: owner, other, admin, anonymous", () => {
    test("owner may update; the new password works, the old does not", async () => {
      const u = await t.user();
      const r = await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "Renamed", password: "new-password-9" } });
      expect(r.status).toBe(200);
      expect(r.body.full_name).toBe("Renamed");
      expect(Object.keys(r.body).sort()).toEqual(PUBLIC_KEYS);
      expect((await t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password: "correct-horse" } })).status).toBe(401);
      expect((await t.json("POST", "/api/v1/auth/login", { body: { email: u.email, password: "new-password-9" } })).status).toBe(200);
    });

    test("another user is 403, anonymous 401, admin 200", async () => {
      const u = await t.user();
      const other = await t.user();
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { token: other.token, body: { full_name: "X" } })).status).toBe(403);
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { body: { full_name: "X" } })).status).toBe(401);
      const r = await t.json("PATCH", `/api/v1/users/${u.id}`, { token: admin.token, body: { full_name: "By Admin" } });
      expect(r.status).toBe(200);
      expect(r.body.full_name).toBe("By Admin");
    });

    test("changing to a taken email is 409; an empty or unknown-field body is 422", async () => {
      const u = await t.user();
      const other = await t.user();
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { email: other.email } })).status).toBe(409);
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: {} })).status).toBe(422);
      expect((await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { is_admin: true } })).status).toBe(422);
    });

    test("admin patching an unknown user is 404", async () => {
      expect((await t.json("PATCH", "/api/v1/users/987654", { token: admin.token, body: { full_name: "X" } })).status).toBe(404);
    });

    test("delete: other 403, anonymous 401, owner 204, then 404", async () => {
      const u = await t.user();
      const other = await t.user();
      expect((await t.request("DELETE", `/api/v1/users/${u.id}`, { token: other.token })).status).toBe(403);
      expect((await t.request("DELETE", `/api/v1/users/${u.id}`)).status).toBe(401);
      const del = await t.request("DELETE", `/api/v1/users/${u.id}`, { token: u.token });
      expect(del.status).toBe(204);
      expect(await del.text()).toBe("");
      expect((await t.json("GET", `/api/v1/users/${u.id}`, { token: other.token })).status).toBe(404);
      expect((await t.request("DELETE", `/api/v1/users/${u.id}`, { token: admin.token })).status).toBe(404);
    });

    test("admin may delete anyone", async () => {
      const u = await t.user();
      expect((await t.request("DELETE", `/api/v1/users/${u.id}`, { token: admin.token })).status).toBe(204);
    });
  });
});
