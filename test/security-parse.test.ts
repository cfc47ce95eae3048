// Defensive parsing: nesting depth refused before JSON.parse, validation errors that never stringify the input,
// and the token checked before any input is validated.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Elysia, t as tb } from "elysia";
import { exceedsJsonDepth, JSON_MAX_DEPTH } from "../src/platform/http/json-depth.ts";
import { boundValidationErrors } from "../src/platform/http/validation-cost.ts";
import { compileRoutes, modelsOf } from "../src/main/app.ts";
import { hostileTexts, warmRefusals } from "../src/platform/http/warm-refusals.ts";
import { parseJsonBody } from "../src/platform/http/json-body.ts";
import { problemOf } from "../src/platform/http/errors.ts";
import { hostileBodies } from "./support/hostile-bodies.ts";
import { waitUntil } from "./support/wait.ts";
import { makeApp, serveApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(() => t.close());

const enc = (s: string) => new TextEncoder().encode(s);
const nested = (depth: number, inner = "0") => "[".repeat(depth) + inner + "]".repeat(depth);

describe("nesting depth", () => {
  test("counts arrays and objects, not brackets inside strings or escaped quotes", () => {
    expect(exceedsJsonDepth(enc(nested(JSON_MAX_DEPTH)))).toBe(false);
    expect(exceedsJsonDepth(enc(nested(JSON_MAX_DEPTH + 1)))).toBe(true);
    expect(exceedsJsonDepth(enc(`{"a":"${"[".repeat(100)}"}`))).toBe(false);
    expect(exceedsJsonDepth(enc(`{"a":"\\"${"{".repeat(100)}"}`))).toBe(false);
    expect(exceedsJsonDepth(enc(`{"a":"\\\\",${"[".repeat(40)}`))).toBe(true);
    expect(exceedsJsonDepth(enc("[".repeat(20_000)))).toBe(true);
  });

  test("skipping strings by their closing quote agrees with a byte-by-byte reading (escaped quotes, backslash runs, unterminated strings)", () => {
    const { jsonShapeProblem } = require("../src/platform/http/json-depth.ts") as typeof import("../src/platform/http/json-depth.ts");
    // The reference: one byte at a time, a backslash skips the next byte inside a string.
    const reference = (bytes: Uint8Array, maxDepth: number, maxValues: number) => {
      let depth = 0;
      let values = 0;
      let inString = false;
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i]!;
        if (inString) {
          if (b === 0x5c) i++;
          else if (b === 0x22) inString = false;
        } else if (b === 0x22) inString = true;
        else if (b === 0x2c) {
          if (++values > maxValues) return "values";
        } else if (b === 0x5b || b === 0x7b) {
          if (++depth > maxDepth) return "depth";
        } else if (b === 0x5d || b === 0x7d) depth--;
      }
      return null;
    };
    // Seeded (mulberry32), so a failure reproduces.
    let seed = 20261202;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let x = seed;
      x = Math.imul(x ^ (x >>> 15), x | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
    const pieces = ['"', "\\", '\\"', "\\\\", "[", "]", "{", "}", ",", "a", "é", ":"];
    for (let n = 0; n < 3000; n++) {
      const text = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => pieces[Math.floor(rand() * pieces.length)]).join("");
      const bytes = enc(text);
      expect([text, jsonShapeProblem(bytes, 3, 4)]).toEqual([text, reference(bytes, 3, 4)]);
    }
  });

  test("a body nested past the limit is a 400 problem at once, on every body route, signed in or not", async () => {
    const u = await t.user();
    const body = "[".repeat(30_000);
    for (const [method, path, token] of [
      ["POST", "/api/v1/auth/login", undefined],
      ["POST", "/api/v1/users", undefined],
      ["PATCH", `/api/v1/users/${u.id}`, u.token],
      ["PATCH", `/api/v1/users/${u.id}/preferences`, u.token],
    ] as const) {
      const started = performance.now();
      const r = await t.json(method, path, { body, token });
      expect(r.status).toBe(400);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
      expect(r.body.detail).toContain(String(JSON_MAX_DEPTH));
      expect(performance.now() - started).toBeLessThan(2_000);
    }
  });

  test("nesting within the limit reaches validation (422 naming the field)", async () => {
    const r = await t.json("POST", "/api/v1/auth/login", { body: `{"email":${nested(JSON_MAX_DEPTH - 1)},"password":"x"}` });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain("email");
  });
});

describe("validation errors", () => {
  test.each([
    ["compiled on the first request", false],
    ["compiled at start (compileRoutes)", true],
  ])("never carry a stringified copy of the input: %s", async (_name, atStart) => {
    let message = "";
    const app = new Elysia()
      .onError(({ error }) => {
        message = (error as Error).message;
        return "x";
      })
      .post("/", () => "ok", { body: tb.Object({ a: tb.String() }) });
    boundValidationErrors(app.routes);
    if (atStart) compileRoutes(app);
    const big = nested(30, Array(5_000).fill('{"k":[1,2,3]}').join(","));
    await app.handle(new Request("http://localhost/", { method: "POST", headers: { "content-type": "application/json" }, body: `{"a":${big}}` }));
    expect(message.length).toBeGreaterThan(0);
    expect(message.length).toBeLessThan(200);
    // The short message given to every schema node stays out of the schema's JSON (the OpenAPI document).
    expect(JSON.stringify(app.routes[0]!.hooks.body)).not.toContain("invalid");
  });
});

describe("the token comes before the input", () => {
  test("anonymous writes with invalid bodies or ids are 401, not 422", async () => {
    for (const [method, path, body] of [
      ["PATCH", "/api/v1/users/1", { nope: 1 }],
      ["PATCH", "/api/v1/users/abc", { full_name: "x" }],
      ["DELETE", "/api/v1/users/abc", undefined],
      ["POST", "/api/v1/users/1/posts", {}],
      ["PATCH", "/api/v1/users/1/preferences", { "bad key": 1 }],
      ["POST", "/api/v1/admin/preferences/bulk", { user_ids: "x" }],
      ["POST", "/api/v1/jobs/status", { job_ids: 1 }],
      ["GET", "/api/v1/users?page=nope", undefined],
      ["GET", "/api/v1/users/1/posts?limit=1000", undefined],
    ] as const) {
      const r = await t.json(method, path, { body });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 401 });
    }
  });

  test("an anonymous or forged caller's body is not read: malformed, deep or oversized-in-values bodies are 401", async () => {
    const bodies = ["{not json", "[".repeat(5_000), `{"user_ids":[${Array(5_000).fill("1").join(",")}]}`];
    const forged = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    for (const body of bodies) {
      for (const headers of [{}, { authorization: forged }] as Record<string, string>[]) {
        const r = await t.json("POST", "/api/v1/admin/preferences/bulk", { body, headers });
        expect({ body: body.slice(0, 12), status: r.status }).toEqual({ body: body.slice(0, 12), status: 401 });
      }
    }
    // With a valid token the same bodies are read and refused for what they are.
    const u = await t.user();
    expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: "{not json" })).status).toBe(400);
  });

  test("a non-admin gets 403 on admin routes before its body is validated", async () => {
    const u = await t.user();
    const r = await t.json("POST", "/api/v1/admin/preferences/bulk", { token: u.token, body: { user_ids: "x" } });
    expect(r.status).toBe(403);
  });
});

describe("the whole auth decision comes before the body", () => {
  // A body the parser refuses for what it is (422 for a number not kept as written, 400 for bad JSON, a lone
  // surrogate, too deep a nesting), sent by a caller the route refuses: the refusal, and the body is never read.
  const refusedBodies = [
    ['{"title":9007199254740993,"content":"x"}', "a number not kept"],
    ['{"user_ids":[9007199254740993],"preference_updates":{"a":"b"}}', "a number not kept in a list"],
    ["{not json", "bad JSON"],
    ['{"title":"\\ud800","content":"x"}', "a lone surrogate"],
    ["[".repeat(JSON_MAX_DEPTH + 8) + "]".repeat(JSON_MAX_DEPTH + 8), "too deep"],
  ] as const;
  /** The request with a body that records whether anything pulled it. */
  const watched = (method: string, path: string, token: string, body: string) => {
    const state = { read: false };
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          state.read = true;
          c.enqueue(enc(body));
          c.close();
        },
      },
      { highWaterMark: 0 },
    );
    const request = new Request(`http://localhost${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: stream,
    });
    return { request, state };
  };

  test("a revoked token: 401 for every such body, which is not read", async () => {
    const u = await t.user();
    expect((await t.json("POST", "/api/v1/auth/logout", { token: u.token })).status).toBe(204);
    const routes = [
      ["POST", `/api/v1/users/${u.id}/posts`],
      ["PATCH", `/api/v1/users/${u.id}`],
      ["PATCH", `/api/v1/users/${u.id}/preferences`],
      ["POST", "/api/v1/auth/logout"],
      ["POST", "/api/v1/admin/preferences/bulk"],
    ] as const;
    for (const [method, path] of routes) {
      for (const [body, kind] of refusedBodies) {
        const { request, state } = watched(method, path, u.token, body);
        const r = await t.app.handle(request);
        expect({ path, kind, status: r.status, read: state.read }).toEqual({ path, kind, status: 401, read: false });
      }
    }
  });

  test("a signed-in non-owner or non-admin: 403 for every such body, which is not read", async () => {
    const u = await t.user();
    const other = await t.user();
    const routes = [
      ["POST", `/api/v1/users/${other.id}/posts`],
      ["PATCH", `/api/v1/users/${other.id}`],
      ["PATCH", `/api/v1/users/${other.id}/preferences`],
      ["POST", "/api/v1/admin/preferences/bulk"],
      ["POST", "/api/v1/jobs/status"],
    ] as const;
    for (const [method, path] of routes) {
      for (const [body, kind] of refusedBodies) {
        const { request, state } = watched(method, path, u.token, body);
        const r = await t.app.handle(request);
        expect({ path, kind, status: r.status, read: state.read }).toEqual({ path, kind, status: 403, read: false });
      }
    }
    // The owner's same bodies are read and refused for what they are.
    const own = await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: refusedBodies[0][0] });
    expect(own.status).toBe(422);
    expect((await t.json("POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: "{not json" })).status).toBe(400);
  });
});

describe("value count", () => {
  test("more values than any schema takes is a 400 before parsing; commas inside strings do not count", async () => {
    const { jsonShapeProblem, JSON_MAX_VALUES } = await import("../src/platform/http/json-depth.ts");
    const { valueBudget } = await import("../src/platform/http/validation-cost.ts");
    expect(valueBudget(tb.Object({ a: tb.String(), b: tb.Array(tb.Integer(), { maxItems: 10 }) }, { additionalProperties: false }))).toBe(12);
    expect(valueBudget(tb.Array(tb.Integer()))).toBe(Infinity);
    const many = (n: number) => enc(`[${Array(n).fill("0").join(",")}]`);
    expect(jsonShapeProblem(many(JSON_MAX_VALUES + 1))).toBeNull();
    expect(jsonShapeProblem(many(JSON_MAX_VALUES + 2))).toBe("values");
    expect(jsonShapeProblem(enc(`{"a":"${",".repeat(10_000)}"}`))).toBeNull();
    const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(",")}}`;
    const r = await t.json("POST", "/api/v1/users", { body: keys(3000) });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain("values");
    // Each route's bound follows its schema: a login body of 40 values is refused unparsed, 5 unknown keys validate.
    expect((await t.json("POST", "/api/v1/auth/login", { body: keys(40) })).status).toBe(400);
    expect((await t.json("POST", "/api/v1/auth/login", { body: keys(5) })).status).toBe(422);
    const u = await t.user();
    expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: keys(50) })).status).toBe(200);
    expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: keys(60) })).status).toBe(422);
    expect((await t.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: keys(500) })).status).toBe(400);
    // The largest body a schema accepts still passes: 1,000 ids (admin only, so 403 for a user, after parsing).
    const bulk = await t.json("POST", "/api/v1/admin/preferences/bulk", { token: u.token, body: { user_ids: Array.from({ length: 1000 }, (_, i) => i + 1), preference_updates: { a: 1 } } });
    expect(bulk.status).toBe(403);
  });
});

describe("compressed request bodies", () => {
  test("a body with a Content-Encoding other than identity is a 415, the fast way and the app's way alike; identity is read", async () => {
    const { serveApp } = await import("./helpers.ts");
    const inst = await serveApp({ CRON_ENABLED: "false" });
    try {
      const json = { "content-type": "application/json" };
      const email = `enc-${crypto.randomUUID().slice(0, 8)}@example.com`;
      const reg = await fetch(`${inst.url}/api/v1/users`, { method: "POST", headers: json, body: JSON.stringify({ email, password: "password-1", full_name: "E" }) });
      const { id } = (await reg.json()) as { id: number };
      const login = await fetch(`${inst.url}/api/v1/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ email, password: "password-1" }) });
      const auth = { ...json, authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` };
      const prefs = `${inst.url}/api/v1/users/${id}/preferences`;
      const gzipped = Bun.gzipSync(new TextEncoder().encode('{"theme":"dark"}'));
      const refused = [
        await fetch(prefs, { method: "PATCH", headers: { ...auth, "content-encoding": "gzip" }, body: gzipped }),
        await fetch(prefs, { method: "PATCH", headers: { ...auth, "content-encoding": "br" }, body: '{"theme":"dark"}' }),
        await fetch(prefs, { method: "PATCH", headers: { ...auth, "content-encoding": "gzip", "idempotency-key": "enc" }, body: gzipped }),
        await fetch(`${inst.url}/api/v1/users`, { method: "POST", headers: { ...json, "content-encoding": "deflate" }, body: '{"email":"x@example.com","password":"password-1","full_name":"X"}' }),
      ];
      for (const r of refused) {
        expect([r.status, r.headers.get("content-type"), r.headers.get("accept-encoding")]).toEqual([415, "application/problem+json", "identity"]);
        expect(((await r.json()) as { status: number }).status).toBe(415);
      }
      const identity = await fetch(prefs, { method: "PATCH", headers: { ...auth, "content-encoding": "identity" }, body: '{"theme":"light"}' });
      expect(identity.status).toBe(200);
      expect(await (await fetch(prefs, { headers: auth })).json()).toEqual({ theme: "light" });
    } finally {
      await inst.stop();
    }
  });
});

describe("a long run of escaped control characters", () => {
  const escaped = () => hostileBodies(t.config.BODY_LIMIT_BYTES).find((b) => b.name === "escaped control characters")!;
  const fieldsOf = (body: { errors?: { field: string; message: string }[] }) => body.errors?.map((e) => e.field);

  test("as long as the body limit allows, is a 422 problem naming full_name, the app's way and the served way", async () => {
    const b = escaped();
    expect(b.body.length).toBeGreaterThan(t.config.BODY_LIMIT_BYTES / 2);
    const viaApp = await t.json(b.method, b.path, { body: b.body });
    expect([viaApp.status, viaApp.res.headers.get("content-type")]).toEqual([422, "application/problem+json"]);
    expect(fieldsOf(viaApp.body)).toEqual(["full_name"]);
    expect(viaApp.body.errors[0].message).toContain("without control characters");
    const inst = await serveApp({ CRON_ENABLED: "false" });
    try {
      const served = await fetch(inst.url + b.path, { method: b.method, headers: { "content-type": "application/json" }, body: b.body });
      expect([served.status, served.headers.get("content-type")]).toEqual([422, "application/problem+json"]);
      expect(await served.json()).toEqual(viaApp.body);
    } finally {
      await inst.stop();
    }
  });

  test("warming the refusals at start (serve.ts) makes no request: no log line, the same answers after it", async () => {
    const logs: string[] = [];
    const w = await makeApp({}, undefined, { logs });
    try {
      const before = logs.length;
      await warmRefusals(w.app.routes, modelsOf(w.app), w.config.BODY_LIMIT_BYTES);
      expect(logs.slice(before)).toEqual([]);
      const b = escaped();
      const r = await w.json(b.method, b.path, { body: b.body });
      expect([r.status, fieldsOf(r.body)]).toEqual([422, ["full_name"]]);
      // The logger does capture: the request's own line arrives, and it is the only line since the warming.
      await waitUntil(() => logs.length > before, 5_000, "the request's log line");
      expect(logs.slice(before).map((l) => JSON.parse(l).msg)).toEqual(["request"]);
    } finally {
      await w.close();
    }
  });

  test("the warmed bodies reach each refusal of the parser: depth, values, bad JSON, a lone surrogate, a long number", async () => {
    const outcomes: string[] = [];
    for (const text of hostileTexts()) {
      const sent = new Request("http://localhost/", { method: "POST", headers: { "content-type": "application/json" }, body: text });
      try {
        await parseJsonBody(sent, "application/json", t.config.BODY_LIMIT_BYTES);
        outcomes.push("parsed");
      } catch (err) {
        const { problem } = problemOf(err);
        outcomes.push(`${problem.status} ${problem.errors ? problem.errors.map((e) => e.field).join(",") : problem.detail}`);
      }
    }
    const expected = [/^400 .*nests/, /^400 .*nests/, /^400 .*more than/, /^400 .*not valid JSON/, /^400 .*lone surrogate/, /^422 0$/, /^parsed$/];
    expect(outcomes.length).toBe(expected.length);
    expected.forEach((re, i) => expect(outcomes[i]).toMatch(re));
  });

  test("a body schema warming cannot compile on its own (one referring to another) is skipped, not a failed start", async () => {
    const routes = [{ hooks: { body: tb.Object({ x: tb.Ref("Elsewhere") }) } }, { hooks: { body: tb.Object({ a: tb.String() }) } }];
    expect(await warmRefusals(routes, {}, t.config.BODY_LIMIT_BYTES, 1)).toBeUndefined();
  });
});
