// Strict input (issue 13): ids and numeric query values are canonical decimal integers only; text fields refuse
// NUL and other control characters. Each refusal is a 422 naming the field, and nothing is stored.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, serveApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { rawRequest } from "./support/raw-http.ts";
import type { RunningInstance } from "../src/main/serve.ts";
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

describe("a query key given more than once is a 422 naming it (the last one no longer wins)", () => {
  let served: RunningInstance;
  let servedAdmin: string;
  beforeAll(async () => {
    served = await serveApp({ ADMIN_EMAIL: "strict-served@example.com", ADMIN_PASSWORD: "admin-password-1" });
    const r = await fetch(`${served.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "strict-served@example.com", password: "admin-password-1" }),
    });
    servedAdmin = (await r.json()).access_token;
  });
  afterAll(() => served?.stop());

  /** Every GET route with a query schema and its keys, read from the app itself: a new one is covered here. */
  const queried = () =>
    t.app.routes
      .filter((r) => r.method === "GET" && r.hooks?.query !== undefined)
      .map((r) => ({ path: r.path.replace(":id", String(admin.id)), keys: Object.keys((r.hooks.query as { properties: object }).properties) }));

  test("the routes with a query schema are the ones the contract pages, and the failed jobs", () => {
    expect(queried().map((r) => r.path).sort()).toEqual(["/api/v1/admin/jobs/failed", "/api/v1/users", `/api/v1/users/${admin.id}/posts`]);
  });

  test("in the app and over the server (whose fast read path declines a repeated key): 422 naming the key", async () => {
    for (const { path, keys } of queried()) {
      for (const key of keys) {
        for (const qs of [`${key}=1&${key}=2`, `${key}=2&${key}=2`, `${key}=1&${key}=1&${key}=1`]) {
          const inApp = await t.json("GET", `${path}?${qs}`, { token: admin.token });
          const overServer = await fetch(`${served.url}${path}?${qs}`, { headers: { authorization: `Bearer ${servedAdmin}` } });
          const body = await overServer.json();
          for (const [wiring, status, b, type] of [
            ["app", inApp.status, inApp.body, inApp.res.headers.get("content-type")],
            ["server", overServer.status, body, overServer.headers.get("content-type")],
          ] as const) {
            expect({ wiring, path, qs, status, type, errors: b.errors }).toEqual({
              wiring, path, qs, status: 422, type: "application/problem+json", errors: [{ field: key, message: "must be a single value, given once" }],
            });
          }
        }
      }
    }
  });

  test("each key given once still answers, over the server too (its fast read path included)", async () => {
    for (const { path, keys } of queried()) {
      const qs = keys.map((k) => `${k}=2`).join("&");
      expect({ path, status: (await t.request("GET", `${path}?${qs}`, { token: admin.token })).status }).toEqual({ path, status: 200 });
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`${served.url}${path}?${qs}`, { headers: { authorization: `Bearer ${servedAdmin}` } });
        expect({ path, status: r.status }).toEqual({ path, status: 200 });
      }
    }
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

  test("a body that may be left out (the logout's) must be an object when sent: other JSON is 422 and nothing ends", async () => {
    const u = await t.user();
    for (const body of ['"just a string"', "1", "true", "[]", "[1]"]) {
      const r = await t.request("POST", "/api/v1/auth/logout", { token: u.token, body });
      expect({ body, status: r.status, fields: fields(await r.json()) }).toEqual({ body, status: 422, fields: ["body"] });
    }
    expect((await t.request("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
    expect((await t.request("POST", "/api/v1/auth/logout", { token: u.token, body: "" })).status).toBe(204);
    expect((await t.request("GET", "/api/v1/users/me", { token: u.token })).status).toBe(401);
  });

  test("a number not kept exactly where text, a boolean or nothing belongs says what belongs there", async () => {
    const u = await t.user();
    const said = async (method: string, path: string, body: string, token = u.token) => {
      const r = await t.json(method, path, { token, body });
      expect({ body, status: r.status }).toEqual({ body, status: 422 });
      return r.body.errors.map((e: { field: string; message: string }) => [e.field, e.message]);
    };
    const name = await said("PATCH", `/api/v1/users/${u.id}`, '{"full_name":9007199254740993}');
    expect(name).toEqual([["full_name", expect.stringMatching(/^must be 1 to 100 characters/)]]);
    expect(await said("POST", "/api/v1/auth/logout", '{"all":1e400}')).toEqual([["all", "must be true or false"]]);
    expect(await said("PATCH", `/api/v1/users/${u.id}`, '{"extra":9007199254740993}')).toEqual([["extra", "is an unknown field: this request does not take it"]]);
    expect(await said("POST", `/api/v1/users/${u.id}/posts`, '{"title":"t","content":1e-400}')).toEqual([["content", expect.stringMatching(/^must be .*characters/)]]);
    // A missing field is said to be missing, not held to the bounds of a value it does not have.
    expect(await said("POST", `/api/v1/users/${u.id}/posts`, '{"title":"t"}')).toEqual([["content", "is required"]]);
    // Where a number belongs, the number message, worded so that it holds for any field.
    const n = await said("PATCH", `/api/v1/users/${u.id}/preferences`, '{"n":9007199254740993}');
    expect(n).toEqual([["n", expect.stringMatching(/^is a number the server cannot keep exactly/)]]);
    const ids = await said("POST", "/api/v1/admin/preferences/bulk", '{"user_ids":[9007199254740993],"preference_updates":{"a":"b"}}', admin.token);
    expect(ids).toEqual([["user_ids.0", expect.stringMatching(/^is a number the server cannot keep exactly/)]]);
    // The logout refused for its body ended nothing.
    expect((await t.json("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
  });

  test("no raw TypeBox text reaches a client: unknown fields, key counts, bounds are said in words, naming the field", async () => {
    const u = await t.user();
    const cases: [string, string, string, [string, string][]][] = [
      ["PATCH", `/api/v1/users/${u.id}`, '{"full_name":"x","extra":1}', [["extra", "is an unknown field: this request does not take it"]]],
      ["PATCH", `/api/v1/users/${u.id}`, '{"":1}', [["body", 'has the unknown field "" (no field of this request has an empty name)']]],
      ["POST", `/api/v1/users/${u.id}/posts`, '{"title":"t","content":"c","z":1}', [["z", "is an unknown field: this request does not take it"]]],
      ["PATCH", `/api/v1/users/${u.id}/preferences`, JSON.stringify(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))), [["body", "must have at most 50 keys"]]],
      ["PATCH", `/api/v1/users/${u.id}/preferences`, '{"":1}', [["body", 'has the key "", which is not of the accepted form (^[A-Za-z0-9_.:-]{1,64}$)']]],
      ["POST", "/api/v1/admin/preferences/bulk", `{"user_ids":[0],"preference_updates":{"a":"b"}}`, [["user_ids.0", "must be at least 1"]]],
      ["POST", "/api/v1/admin/preferences/bulk", `{"user_ids":[1e20],"preference_updates":{"a":"b"}}`, [["user_ids.0", "must be at most 9007199254740991"]]],
      ["POST", "/api/v1/jobs/status", '{"job_ids":"x"}', [["job_ids", "must be a list"]]],
      ["POST", "/api/v1/users", "[]", [["body", "must be an object"]]],
    ];
    for (const [method, path, body, want] of cases) {
      const token = path.includes("/admin/") || path.includes("/jobs/") ? admin.token : u.token;
      const r = await t.json(method, path, { token, body });
      const got = r.body.errors?.map((e: { field: string; message: string }) => [e.field, e.message]);
      expect({ path, body: body.slice(0, 40), status: r.status, got }).toEqual({ path, body: body.slice(0, 40), status: 422, got: want });
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

describe("numbers are kept as written, or refused naming the field", () => {
  test.each([
    ["an integer past 2^53", "9007199254740993"],
    ["a negative integer past -2^53", "-9007199254740993"],
    ["2^53 itself (I-JSON's exact range ends at 2^53 - 1)", "9007199254740992"],
    ["a nonzero number that underflows to 0", "1.5e-400"],
    ["a negative one", "-2E-999"],
    ["a fraction of many zeros that underflows", `0.${"0".repeat(400)}1`],
    ["one that overflows to Infinity", "1e400"],
  ])("a preference of %s is 422 naming the key; nothing is stored", async (_n, literal) => {
    const u = await t.user();
    const r = await t.request("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: `{"ok":"yes","n":${literal}}` });
    const body = await r.json();
    expect(r.status).toBe(422);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect(r.headers.get("x-request-id")).toBeTruthy();
    expect(fields(body)).toEqual(["n"]);
    expect(body.errors[0].message).toContain("2^53");
    expect((await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token })).body).toEqual({});
  });

  test("numbers the server holds exactly are stored and read back as sent", async () => {
    const u = await t.user();
    const sent = '{"max":9007199254740991,"min":-9007199254740991,"tiny":1e-300,"zero":0.0e-500,"half":1.5,"big":1e300,"digits":"12345678901234567890"}';
    const r = await t.request("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: sent });
    expect(r.status).toBe(200);
    const back = await t.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
    expect(back.body).toEqual(JSON.parse(sent));
    expect(back.body.max).toBe(Number.MAX_SAFE_INTEGER);
  });

  test("the bulk update names the field by its path", async () => {
    const r = await t.request("POST", "/api/v1/admin/preferences/bulk", {
      token: admin.token,
      body: `{"user_ids":[${admin.id}],"preference_updates":{"a":1,"b":12345678901234567890}}`,
    });
    expect(r.status).toBe(422);
    expect(fields(await r.json())).toEqual(["preference_updates.b"]);
  });
});

describe("names and titles must show something; lengths count characters, as the document says", () => {
  const email = () => `len-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const register = (full_name: string, password = "correct-horse") => t.json("POST", "/api/v1/users", { body: { email: email(), password, full_name } });

  test.each([
    ["spaces", "  "],
    ["a tab", "\t"],
    ["no-break spaces", "\u00a0\u00a0"],
    ["ideographic space", "\u3000"],
    // Characters that are not white space but draw nothing by themselves.
    ["a zero-width joiner alone", "\u200D"],
    ["two zero-width non-joiners", "\u200C\u200C"],
    ["a Hangul filler", "\u3164"],
    ["a Hangul choseong filler", "\u115F"],
    ["a halfwidth Hangul filler", "\uFFA0"],
    ["a braille blank", "\u2800"],
    ["a soft hyphen", "\u00AD"],
    ["a combining grapheme joiner", "\u034F"],
    ["a Mongolian vowel separator", "\u180E"],
    ["a Khmer inherent vowel", "\u17B4"],
    ["a variation selector", "\uFE0F"],
    ["a tag space (a surrogate pair)", "\u{E0020}"],
    ["a cancel tag (a surrogate pair)", "\u{E007F}"],
    ["a supplementary variation selector", "\u{E0100}"],
    ["a combining acute accent alone", "\u0301"],
    ["a space, joiners and marks", " \u200D\u0301\uFE0F\u{E0020} "],
  ])(
    "a full_name or a title of %s is 422 naming the field",
    async (_n, blank) => {
      const r = await register(blank);
      expect(r.status).toBe(422);
      expect(fields(r.body)).toEqual(["full_name"]);
      expect(r.body.errors[0].message).toContain("not only white space");
      const u = await t.user();
      const patch = await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: blank } });
      expect(patch.status).toBe(422);
      expect(fields(patch.body)).toEqual(["full_name"]);
      const post = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: blank, content: "c" } });
      expect(post.status).toBe(422);
      expect(fields(post.body)).toEqual(["title"]);
    },
  );

  test("text with spaces around something visible is kept as sent", async () => {
    const r = await register(" Ada ");
    expect(r.status).toBe(201);
    expect(r.body.full_name).toBe(" Ada ");
  });

  test.each([
    ["an accented letter written with a combining mark", "e\u0301"],
    ["an emoji with a variation selector", "\u2764\uFE0F"],
    ["an emoji sequence with joiners", "\u{1F469}\u200D\u{1F4BB}"],
    ["a flag written with tag characters", "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}"],
    ["a Hangul syllable", "\uD55C"],
    ["a CJK character outside the BMP", "\u{20000}"],
  ])("a full_name of %s (blank characters next to one that shows) is kept as sent", async (_n, name) => {
    const r = await register(name);
    expect(r.status).toBe(201);
    expect(r.body.full_name).toBe(name);
  });

  test("a name of 100 emoji (200 UTF-16 units) is 100 characters: accepted; 101 is refused", async () => {
    const smile = "\u{1F600}";
    const ok = await register(smile.repeat(100));
    expect(ok.status).toBe(201);
    expect(ok.body.full_name).toBe(smile.repeat(100));
    const over = await register(smile.repeat(101));
    expect(over.status).toBe(422);
    expect(fields(over.body)).toEqual(["full_name"]);
    const u = await t.user();
    const title = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: smile.repeat(200), content: smile.repeat(10_000) } });
    expect(title.status).toBe(201);
    const pref = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { e: smile.repeat(1000) } });
    expect(pref.status).toBe(200);
    expect(pref.body.e).toBe(smile.repeat(1000));
    const prefOver = await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { e: smile.repeat(1001) } });
    expect(prefOver.status).toBe(422);
    expect(fields(prefOver.body)).toEqual(["e"]);
  });

  test("a password of 128 emoji registers and logs in (the login counts the same way)", async () => {
    const e = email();
    const password = "\u{1F511}".repeat(128);
    expect((await t.json("POST", "/api/v1/users", { body: { email: e, password, full_name: "Key" } })).status).toBe(201);
    const login = await t.json("POST", "/api/v1/auth/login", { body: { email: e, password } });
    expect(login.status).toBe(200);
    const tooLong = await t.json("POST", "/api/v1/auth/login", { body: { email: e, password: password + "\u{1F511}" } });
    expect(tooLong.status).toBe(422);
    expect(fields(tooLong.body)).toEqual(["password"]);
  });

  test("the server accepts a full_name exactly when the OpenAPI document's schema does (lengths in code points, as JSON Schema counts)", async () => {
    const doc = (await t.json("GET", "/swagger/json")).body;
    const schema = doc.paths["/api/v1/users"].post.requestBody.content["application/json"].schema.properties.full_name;
    expect(schema).toMatchObject({ type: "string", minLength: 1, maxLength: 100 });
    // What a JSON Schema validator does (Ajv and generated clients: code points, the pattern as a Unicode regex).
    const documented = (s: string) => [...s].length >= schema.minLength && [...s].length <= schema.maxLength && new RegExp(schema.pattern, "u").test(s);
    // Blank characters of the BMP too; the tag characters (surrogate pairs) are left out: a validator that compiles
    // the pattern with `u` cannot see their halves and reads them as showing, while the server refuses them.
    const samples = [
      ...["Ada", "\u{1F600}".repeat(100), "\u{1F600}".repeat(101), "  ", "", " x ", "x".repeat(101), "\u{1F469}\u200D\u{1F4BB}".repeat(33)],
      ...["\u200D", "\u200C\u200C", "\u3164", "\u2800", "\u00AD", "\u034F", "\u180E", "\uFE0F", "\u0301", "e\u0301", "\u2764\uFE0F", " \u200D\u3164 "],
    ];
    for (const full_name of samples) {
      const r = await register(full_name);
      expect({ full_name, status: r.status }).toEqual({ full_name, status: documented(full_name) ? 201 : 422 });
    }
  });
});

describe("a known path asked with another method is 405 with Allow; an unknown path stays 404", () => {
  const ORIGIN = "https://app.example";
  let served: RunningInstance;
  beforeAll(async () => {
    served = await serveApp({ CORS_ORIGINS: ORIGIN });
  });
  afterAll(() => served?.stop());

  const cases: [method: string, path: string, allow: string][] = [
    // Paths the fast path serves (Bun's routes send their other methods to the app) and paths it does not.
    ["PUT", "/api/v1/users/1", "GET, HEAD, PATCH, DELETE, OPTIONS"],
    ["POST", "/api/v1/users/1/preferences", "GET, HEAD, PATCH, OPTIONS"],
    ["DELETE", "/api/v1/users/1/posts", "GET, HEAD, POST, OPTIONS"],
    ["PATCH", "/api/v1/users", "GET, HEAD, POST, OPTIONS"],
    ["GET", "/api/v1/auth/login", "POST, OPTIONS"],
    ["DELETE", "/health/live", "GET, HEAD, OPTIONS"],
  ];

  test.each(cases)("%s %s: 405 problem+json with Allow and x-request-id, over the server and in the app", async (method, path, allow) => {
    const overServer = await rawRequest(served.url, method, path, { "x-request-id": "wrong-method-1" });
    expect(overServer.status).toBe(405);
    expect(overServer.headers.allow).toBe(allow);
    expect(overServer.headers["content-type"]).toBe("application/problem+json");
    expect(overServer.headers["x-request-id"]).toBe("wrong-method-1");
    expect(JSON.parse(overServer.body)).toMatchObject({ status: 405, title: "Method Not Allowed" });
    const inApp = await t.request(method, path);
    expect([inApp.status, inApp.headers.get("allow")]).toEqual([405, allow]);
  });

  test("every method an Allow names is answered by a route (none of them is 404 or 405)", async () => {
    const u = await t.user();
    for (const [, template, allow] of cases) {
      const path = template.replace("/users/1", `/users/${u.id}`);
      for (const method of allow.split(", ")) {
        const r = await t.request(method, path, { token: u.token, headers: { "content-type": "application/json" } });
        expect({ method, path, status: r.status }).not.toMatchObject({ status: 404 });
        expect({ method, path, status: r.status }).not.toMatchObject({ status: 405 });
      }
    }
  });

  test("an unknown path is 404 whatever the method, without Allow", async () => {
    for (const [method, path] of [["GET", "/api/v1/nope"], ["PUT", "/api/v1/users/1/nope"], ["OPTIONS", "/nope"], ["DELETE", "/api/v2/users/1"]]) {
      const r = await rawRequest(served.url, method!, path!, { "x-request-id": "unknown-path" });
      expect({ method, path, status: r.status, allow: r.headers.allow }).toEqual({ method, path, status: 404, allow: undefined });
      expect(r.headers["x-request-id"]).toBe("unknown-path");
      expect(r.headers["content-type"]).toBe("application/problem+json");
    }
  });

  test("OPTIONS on a known path (not a CORS preflight) is 204 with Allow; a preflight is still the CORS answer", async () => {
    const plain = await rawRequest(served.url, "OPTIONS", "/api/v1/users/1", { "x-request-id": "options-1" });
    expect(plain.status).toBe(204);
    expect(plain.headers.allow).toBe("GET, HEAD, PATCH, DELETE, OPTIONS");
    expect(plain.headers["x-request-id"]).toBe("options-1");
    expect(plain.body).toBe("");
    const preflight = await rawRequest(served.url, "OPTIONS", "/api/v1/users/1", { origin: ORIGIN, "access-control-request-method": "PATCH" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(preflight.headers["access-control-allow-methods"]).toContain("PATCH");
    // A wrong method from an allowed origin is readable by its page: the CORS headers are on the 405 too.
    const cross = await rawRequest(served.url, "PUT", "/api/v1/users/1", { origin: ORIGIN });
    expect([cross.status, cross.headers["access-control-allow-origin"], cross.headers.allow]).toEqual([405, ORIGIN, "GET, HEAD, PATCH, DELETE, OPTIONS"]);
  });
});

test("a body of thousands of numbers not kept as written names the first ten: the answer stays small", async () => {
  const r = await t.request("POST", "/api/v1/admin/preferences/bulk", { token: admin.token, body: `{"user_ids":[${Array(1500).fill("1e-400").join(",")}]}` });
  const body = await r.json();
  expect(r.status).toBe(422);
  expect(fields(body)).toEqual(Array.from({ length: 10 }, (_, i) => `user_ids.${i}`));
});
