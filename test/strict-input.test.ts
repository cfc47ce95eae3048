// Strict input (issue 13): ids and numeric query values are canonical decimal integers only; text fields refuse
// NUL and other control characters. Each refusal is a 422 naming the field, and nothing is stored.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
let admin: { id: number; token: string };

beforeAll(async () => {
  t = await makeApp({ ADMIN_EMAIL: "strict-admin@example.com", ADMIN_PASSWORD: "admin-password-1" });
  const token = await t.login("strict-admin@example.com", "admin-password-1");
  const me = await t.json("GET", "/api/v1/users/me", { token });
  admin = { id: me.body.user.id, token };
});
afterAll(() => t.close());

const fields = (body: { errors?: { field: string }[] }) => (body.errors ?? []).map((e) => e.field);

describe("ids and numeric query values: decimal digits only", () => {
  test.each(["0b1", "01", "1.0", "+2", "2e0", "0x1", " 1", "1 ", "１", "-0", "1_0", "Infinity"])("GET /users/%s is 422 naming id", async (raw) => {
    const r = await t.json("GET", `/api/v1/users/${encodeURIComponent(raw)}`, { token: admin.token });
    expect(r.status).toBe(422);
    expect(r.res.headers.get("content-type")).toBe("application/problem+json");
    expect(fields(r.body)).toEqual(["id"]);
    expect(r.body.errors[0].message).toContain("decimal digits");
  });

  test("the canonical spelling of the same id answers", async () => {
    const r = await t.json("GET", `/api/v1/users/${admin.id}`, { token: admin.token });
    expect(r.status).toBe(200);
    expect(r.body.user.id).toBe(admin.id);
  });

  test.each([
    ["limit=0x10", "limit"],
    ["limit=010", "limit"],
    ["limit=1e1", "limit"],
    ["limit=10.0", "limit"],
    ["page=+1", "page"],
    ["page=0b1", "page"],
    ["page=", "page"],
  ])("GET /users?%s is 422 naming %s", async (qs, field) => {
    const r = await t.json("GET", `/api/v1/users?${qs}`, { token: admin.token });
    expect(r.status).toBe(422);
    expect(fields(r.body)).toContain(field);
  });

  test("the same values spelled canonically answer, as numbers", async () => {
    const r = await t.json("GET", "/api/v1/users?page=1&limit=16", { token: admin.token });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ page: 1, limit: 16 });
    expect(typeof r.body.total).toBe("number");
  });

  test("ids in other routes and the failed-jobs limit follow the same rule", async () => {
    for (const path of [`/api/v1/users/0${admin.id}/posts`, `/api/v1/users/${admin.id}.0/preferences`]) {
      const r = await t.json("GET", path, { token: admin.token });
      expect({ path, status: r.status, fields: fields(r.body) }).toEqual({ path, status: 422, fields: ["id"] });
    }
    const failed = await t.json("GET", "/api/v1/admin/jobs/failed?limit=0x10", { token: admin.token });
    expect(failed.status).toBe(422);
    expect(fields(failed.body)).toEqual(["limit"]);
  });
});

describe("text fields refuse control characters", () => {
  const register = (body: Record<string, unknown>) => t.json("POST", "/api/v1/users", { body });

  test.each([
    ["NUL inside", "a\u0000b"],
    ["only NUL", "\u0000"],
    ["escape", "Ada\u001b[31m"],
    ["line feed", "Ada\nLovelace"],
    ["DEL", "Ada\u007f"],
    ["C1 control", "Ada\u0085"],
  ])("full_name with %s is 422 naming full_name, and no account is made", async (_name, fullName) => {
    const email = `ctl-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const r = await register({ email, password: "correct-horse", full_name: fullName });
    expect(r.status).toBe(422);
    expect(fields(r.body)).toEqual(["full_name"]);
    expect(r.body.errors[0].message).toContain("control characters");
    const again = await register({ email, password: "correct-horse", full_name: "Ada" });
    expect(again.status).toBe(201);
  });

  test("email and password with NUL are 422 naming the field", async () => {
    const a = await register({ email: "nul\u0000@example.com", password: "correct-horse", full_name: "Ada" });
    expect(a.status).toBe(422);
    expect(fields(a.body)).toEqual(["email"]);
    const b = await register({ email: `pw-${crypto.randomUUID().slice(0, 8)}@example.com`, password: "correct\u0000horse", full_name: "Ada" });
    expect(b.status).toBe(422);
    expect(fields(b.body)).toEqual(["password"]);
  });

  test("a post's title refuses control characters; its content keeps tabs and line breaks but refuses NUL", async () => {
    const u = await t.user();
    const post = (body: Record<string, unknown>) => t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body });
    const badTitle = await post({ title: "a\u0000b", content: "c" });
    expect(badTitle.status).toBe(422);
    expect(fields(badTitle.body)).toEqual(["title"]);
    const badContent = await post({ title: "t", content: "a\u0000b" });
    expect(badContent.status).toBe(422);
    expect(fields(badContent.body)).toEqual(["content"]);
    const ok = await post({ title: "t", content: "line one\n\tline two\r\n" });
    expect(ok.status).toBe(201);
    expect(ok.body.content).toBe("line one\n\tline two\r\n");
    const list = await t.json("GET", `/api/v1/users/${u.id}/posts`, { token: u.token });
    expect(list.body.items.map((p: { content: string }) => p.content)).toEqual(["line one\n\tline two\r\n"]);
  });

  test("PATCH /users/{id} full_name and a preference value with NUL are refused; nothing changes", async () => {
    const u = await t.user();
    const patch = await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "x\u0000" } });
    expect(patch.status).toBe(422);
    expect(fields(patch.body)).toEqual(["full_name"]);
    const prefs = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { motto: "a\u0000b" } });
    expect(prefs.status).toBe(422);
    expect(fields(prefs.body)).toEqual(["motto"]);
    const detail = await t.json("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(detail.body.user.full_name).toBe("Test User");
    expect(detail.body.preferences).toEqual({});
  });
});

describe("text is Unicode: no invalid UTF-8, no lone surrogates, no bidi or invisible characters in names", () => {
  const raw = (body: string) => t.json("POST", "/api/v1/users", { body });
  const email = () => `uni-${crypto.randomUUID().slice(0, 8)}@example.com`;

  test("a body that is not UTF-8 is 400 and makes no account", async () => {
    const e = email();
    const prefix = new TextEncoder().encode(`{"email":"${e}","password":"correct-horse","full_name":"Ad`);
    const suffix = new TextEncoder().encode(`a"}`);
    const body = new Uint8Array([...prefix, 0xc3, 0x28, ...suffix]); // 0xC3 0x28: a broken two-byte sequence
    const r = await t.app.handle(new Request("http://localhost/api/v1/users", { method: "POST", body, headers: { "content-type": "application/json" } }));
    expect(r.status).toBe(400);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect((await t.json("POST", "/api/v1/users", { body: { email: e, password: "correct-horse", full_name: "Ada" } })).status).toBe(201);
  });

  test("a surrogate encoded in UTF-8 bytes is 400; a leading byte order mark is dropped, the body read", async () => {
    const send = (body: Uint8Array<ArrayBuffer>) => t.app.handle(new Request("http://localhost/api/v1/users", { method: "POST", body, headers: { "content-type": "application/json" } }));
    const json = (text: string) => new TextEncoder().encode(text);
    const e = email();
    const surrogate = new Uint8Array([...json(`{"email":"${e}","password":"correct-horse","full_name":"Ad`), 0xed, 0xa0, 0x80, ...json(`a"}`)]);
    expect((await send(surrogate)).status).toBe(400);
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...json(`{"email":"${e}","password":"correct-horse","full_name":"Ada"}`)]);
    expect((await send(bom)).status).toBe(201);
  });

  test.each([
    ["a lone high surrogate", "\\ud800"],
    ["a lone low surrogate", "\\uDC00x"],
    ["a reversed pair", "\\udc00\\ud800"],
  ])("full_name with %s escape is 400; a real pair escaped is stored", async (_n, escaped) => {
    const e = email();
    const r = await raw(`{"email":"${e}","password":"correct-horse","full_name":"Ada${escaped}"}`);
    expect(r.status).toBe(400);
    const ok = await raw(`{"email":"${e}","password":"correct-horse","full_name":"Ada \\ud83d\\ude00"}`);
    expect(ok.status).toBe(201);
    expect(ok.body.full_name).toBe("Ada \u{1F600}");
  });

  test("a lone surrogate in a preference key is 400 too", async () => {
    const u = await t.user();
    const r = await t.request("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: '{"a\\ud800":1}' });
    expect(r.status).toBe(400);
  });

  test.each([
    ["right-to-left override", "Ada\u202Eecalevol"],
    ["right-to-left isolate", "Ada\u2067x\u2069"],
    ["left-to-right mark", "Ada\u200E"],
    ["zero-width space", "A\u200Bda"],
    ["byte order mark", "\uFEFFAda"],
    ["word joiner", "Ad\u2060a"],
  ])("full_name and a post title with a %s are 422", async (_n, text) => {
    const r = await t.json("POST", "/api/v1/users", { body: { email: email(), password: "correct-horse", full_name: text } });
    expect(r.status).toBe(422);
    expect(fields(r.body)).toEqual(["full_name"]);
    const u = await t.user();
    const p = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: text, content: text } });
    expect(p.status).toBe(422);
    expect(fields(p.body)).toEqual(["title"]);
  });

  test("joiners stay allowed (scripts and emoji sequences need them)", async () => {
    const name = "Ada \u{1F469}\u200D\u{1F4BB} می\u200Cخواهم";
    const r = await t.json("POST", "/api/v1/users", { body: { email: email(), password: "correct-horse", full_name: name } });
    expect(r.status).toBe(201);
    expect(r.body.full_name).toBe(name);
  });
});

describe("what a refusal says", () => {
  test("a preference value that is too long or holds NUL is 422 naming the key and saying what a value may be", async () => {
    const u = await t.user();
    for (const value of ["x".repeat(1001), "a\u0000b"]) {
      const r = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { motto: value } });
      expect(r.status).toBe(422);
      expect(fields(r.body)).toEqual(["motto"]);
      expect(r.body.errors[0].message).toContain("at most 1000 characters without control characters");
    }
  });

  test("a body declared in a charset other than UTF-8 is 415; UTF-8 spelled either way is read", async () => {
    const u = await t.user();
    const path = `/api/v1/users/${u.id}/preferences`;
    const send = (type: string) => t.request("PATCH", path, { token: u.token, body: '{"theme":"dark"}', headers: { "content-type": type } });
    expect((await send("application/json; charset=latin1")).status).toBe(415);
    expect((await send("application/json; charset=utf-16")).status).toBe(415);
    expect((await send("application/json; charset=UTF-8")).status).toBe(200);
    expect((await send('application/json;charset="utf8"')).status).toBe(200);
  });
});
