// The OpenAPI document as the tools its users run see it: the OpenAPI schema validator, Redocly's recommended
// lint (redocly.yaml), Ajv 2020 in strict mode on every schema, and what a client generator needs from it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { makeApp, ROOT, TMP, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { compileAll, documentAjv, operations, type Doc } from "./support/openapi.ts";
import { NOT_REPLAYED } from "../src/main/openapi.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
let doc: Doc;

beforeAll(async () => {
  t = await makeApp();
  const r = await t.json("GET", "/swagger/json");
  expect(r.status).toBe(200);
  doc = r.body;
});
afterAll(() => t.close());

describe("the document validates", () => {
  test("@seriousme/openapi-schema-validator: valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  test("redocly lint, recommended rules: 0 errors, 0 warnings (exceptions justified in redocly.yaml)", async () => {
    // The ignore file (.redocly.lint-ignore.yaml) names this path.
    const file = join(TMP, "openapi.json");
    await Bun.write(file, JSON.stringify(doc, null, 2));
    const proc = Bun.spawn(
      ["bun", join(ROOT, "node_modules/@redocly/cli/bin/cli.js"), "lint", file, "--config", join(ROOT, "redocly.yaml"), "--format", "json"],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" } },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const report = JSON.parse(out) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
    expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`), err).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    expect(code).toBe(0);
  }, 60_000);

  test("Ajv 2020 in strict mode compiles every schema (components, parameters, bodies, responses, headers)", () => {
    const { compiled, failures } = compileAll(doc);
    expect(failures).toEqual([]);
    expect(compiled).toBeGreaterThan(100);
  });
});

describe("what clients need from it", () => {
  test("every operation: a human operationId and summary, declared tags, explicit security", () => {
    const declared = new Set(doc.tags.map((tag: { name: string }) => tag.name));
    const ids = new Set<string>();
    for (const { method, path, op } of operations(doc)) {
      const where = `${method} ${path}`;
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.operationId, where).not.toMatch(/Api|V1|By[A-Z]/);
      expect(ids.has(op.operationId), `${where} operationId unique`).toBe(false);
      ids.add(op.operationId);
      expect(op.summary?.length, `${where} summary`).toBeGreaterThan(5);
      for (const tag of op.tags) expect(declared.has(tag), `${where} tag ${tag}`).toBe(true);
      expect(Array.isArray(op.security), `${where} security`).toBe(true);
    }
    const secured = (p: string, m: string) => doc.paths[p][m].security.length > 0;
    expect(secured("/api/v1/users", "post")).toBe(false);
    expect(secured("/api/v1/auth/login", "post")).toBe(false);
    expect(secured("/health/live", "get")).toBe(false);
    expect(secured("/api/v1/users/{id}", "get")).toBe(true);
    expect(doc.paths["/api/v1/users/{id}"].get.operationId).toBe("getUserDetail");
    expect(doc.servers.length).toBeGreaterThan(0);
  });

  test("integers are integers: no string-or-integer unions, no $id, no non-standard keywords", () => {
    const text = JSON.stringify(doc);
    expect(text).not.toContain('"format":"integer"');
    expect(text).not.toContain('"format":"numeric"');
    expect(text).not.toContain('"$id"');
    expect(text).not.toMatch(/"(error|void|type":"void)"/);
    const user = doc.components.schemas.UserPublic;
    expect(user.properties.id).toMatchObject({ type: "integer" });
    const id = doc.paths["/api/v1/users/{id}"].get.parameters.find((p: { name: string }) => p.name === "id");
    expect(id.schema).toMatchObject({ type: "integer", minimum: 1 });
    const limit = doc.paths["/api/v1/users"].get.parameters.find((p: { name: string }) => p.name === "limit");
    expect(limit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 10 });
    expect(doc.components.schemas.Problem.properties.status.type).toBe("integer");
  });

  test("request bodies are documented as application/json with their schema and an example", () => {
    const bodies = operations(doc).filter(({ op }) => op.requestBody);
    expect(bodies.map(({ method, path }) => `${method} ${path}`).sort()).toEqual(
      [
        "post /api/v1/users",
        "post /api/v1/auth/login",
        "post /api/v1/auth/logout",
        "patch /api/v1/users/{id}",
        "post /api/v1/users/{id}/posts",
        "patch /api/v1/users/{id}/preferences",
        "post /api/v1/jobs/status",
        "post /api/v1/admin/preferences/bulk",
      ].sort(),
    );
    const ajv = documentAjv(doc);
    for (const { method, path, op } of bodies) {
      const media = op.requestBody.content["application/json"];
      expect(Object.keys(op.requestBody.content), `${method} ${path}`).toEqual(["application/json"]);
      expect(media.schema, `${method} ${path}`).toBeDefined();
      expect(media.example, `${method} ${path} example`).toBeDefined();
      expect(ajv.validate(media.schema, media.example), `${method} ${path} example validates`).toBe(true);
      for (const s of [400, 408, 413, 415, 422]) expect(op.responses[s], `${method} ${path} ${s}`).toBeDefined();
      expect(Object.keys(op.responses[408].content), `${method} ${path} 408`).toEqual(["application/problem+json"]);
      expect(op.responses[408].headers.connection, `${method} ${path} 408 connection`).toEqual({ $ref: "#/components/headers/Connection" });
    }
    for (const { method, path, op } of operations(doc)) {
      for (const p of op.parameters ?? []) expect(p.example, `${method} ${path} ${p.name} example`).toBeDefined();
    }
  });

  test("errors are application/problem+json (Problem), every response has x-request-id, 401 has WWW-Authenticate", () => {
    for (const { method, path, op } of operations(doc)) {
      for (const [status, r] of Object.entries<any>(op.responses)) {
        const where = `${method} ${path} ${status}`;
        expect(r.headers?.["x-request-id"], where).toEqual({ $ref: "#/components/headers/XRequestId" });
        expect(r.description, where).not.toMatch(/^Response for status/);
        if (Number(status) >= 400 && path !== "/health/ready") {
          expect(r.content, where).toEqual({ "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } });
        }
        if (status === "401") expect(r.headers["www-authenticate"], where).toBeDefined();
        if (status === "204") expect(r.content, where).toBeUndefined();
      }
    }
    expect(doc.components.headers.XRequestId.required).toBe(true);
  });

  test("writes list 409 with fly-replay (a replica's answer); login's 429 has Retry-After", () => {
    for (const { method, path, op } of operations(doc)) {
      if (method === "get" || path.startsWith("/health")) continue;
      expect(op.responses["409"]?.headers?.["fly-replay"], `${method} ${path}`).toBeDefined();
    }
    expect(doc.paths["/api/v1/auth/login"].post.responses["429"].headers["retry-after"]).toBeDefined();
  });

  test("POST and PATCH take an Idempotency-Key header (1 to 255 printable characters) and may answer idempotent-replayed", () => {
    const ajv = documentAjv(doc);
    for (const { method, path, op } of operations(doc)) {
      const param = (op.parameters ?? []).find((p: { name: string }) => p.name === "Idempotency-Key");
      // Login and logout run every time (NOT_REPLAYED): the document does not offer them the key.
      if ((method !== "post" && method !== "patch") || NOT_REPLAYED.has(path)) {
        expect(param, `${method} ${path}`).toBeUndefined();
        continue;
      }
      expect(param, `${method} ${path}`).toMatchObject({ in: "header", required: false });
      expect(ajv.validate(param.schema, "retry-1")).toBe(true);
      expect(ajv.validate(param.schema, "")).toBe(false);
      expect(ajv.validate(param.schema, "tab\tkey")).toBe(false);
      const ok = Object.entries<any>(op.responses).find(([s]) => Number(s) < 300)![1];
      expect(ok.headers["idempotent-replayed"], `${method} ${path}`).toBeDefined();
      expect(op.responses["409"].description, `${method} ${path}`).toContain("Idempotency-Key");
    }
    for (const path of NOT_REPLAYED) expect(doc.paths[path]?.post, path).toBeDefined();
  });

  test("rate-limited routes: 429 with Retry-After, RateLimit-Policy and RateLimit; RateLimit on successes", () => {
    for (const { method, path, op } of operations(doc)) {
      if (path.startsWith("/health")) {
        expect(op.responses["429"], `${method} ${path}`).toBeUndefined();
        continue;
      }
      const limited = op.responses["429"];
      expect(Object.keys(limited?.headers ?? {}), `${method} ${path}`).toEqual(
        expect.arrayContaining(["retry-after", "ratelimit-policy", "ratelimit"]),
      );
      for (const [status, r] of Object.entries<any>(op.responses)) {
        if (Number(status) < 300) expect(r.headers.ratelimit, `${method} ${path} ${status}`).toBeDefined();
      }
    }
  });

  test("Page<T> and the shared shapes are named components; the detail is typed down to each post", () => {
    const s = doc.components.schemas;
    for (const name of ["UserPublic", "PostPublic", "UserDetail", "UserPage", "PostPage", "Problem", "Job"]) expect(s[name], name).toBeDefined();
    expect(doc.paths["/api/v1/users"].get.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/UserPage" });
    expect(s.UserPage.properties.items.items).toEqual({ $ref: "#/components/schemas/UserPublic" });
    expect(s.PostPage.properties.items.items).toEqual({ $ref: "#/components/schemas/PostPublic" });
    expect(s.UserDetail.properties.posts.items).toEqual({ $ref: "#/components/schemas/PostPublic" });
    expect(s.UserDetail.properties.user).toEqual({ $ref: "#/components/schemas/UserPublic" });
  });

  test("the cron schema accepts a schedule that never ran (last_status null)", () => {
    const ajv = documentAjv(doc);
    const schema = doc.paths["/api/v1/admin/cron"].get.responses["200"].content["application/json"].schema;
    const never = {
      name: "cleanup",
      schedule: "0 * * * *",
      last_run_at: null,
      last_instance: null,
      last_status: null,
      next_run_at: "2026-12-02T05:00:00.000Z",
      last_finished_at: null,
      last_error: null,
      description: null,
      writes_db: true,
    };
    expect(ajv.validate(schema, [never]), JSON.stringify(ajv.errors)).toBe(true);
    expect(ajv.validate(schema, [{ ...never, last_status: "completed" }])).toBe(true);
    expect(ajv.validate(schema, [{ ...never, last_status: "exploded" }])).toBe(false);
  });
});
