// Request ids, problem+json for every error, one log line per request with no secrets, health, OpenAPI.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { makeApp, REDIS_URL, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { logsSettled } from "./support/wait.ts";
import { HttpMetrics } from "../src/platform/observability/metrics.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { requestObserver } from "../src/platform/http/request-context.ts";
import { allowedMethods, allows } from "../src/platform/http/allowed-methods.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
const logs: string[] = [];
beforeAll(async () => {
  t = await makeApp({}, undefined, { logs });
});
afterAll(() => t.close());

describe("request tracking", () => {
  test("every response carries x-request-id; a sane client id is echoed, a hostile one replaced", async () => {
    const a = await t.request("GET", "/health/live");
    expect(a.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const b = await t.request("GET", "/health/live", { headers: { "x-request-id": "client-abc-123" } });
    expect(b.headers.get("x-request-id")).toBe("client-abc-123");
    const c = await t.request("GET", "/nowhere", { headers: { "x-request-id": "has spaces; \"quotes\" " + "y".repeat(200) } });
    expect(c.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const d = await t.request("GET", "/api/v1/users/me", { headers: { "x-request-id": "err-1" } });
    expect(d.status).toBe(401);
    expect(d.headers.get("x-request-id")).toBe("err-1");
  });

  test("one JSON log line per request with method, route, status, duration, request id and instance", async () => {
    logs.length = 0;
    await t.request("GET", "/health/live", { headers: { "x-request-id": "log-me" } });
    await logsSettled(logs, (rid) => t.request("GET", "/health/live", { headers: { "x-request-id": rid } }));
    const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "request" && l.request_id === "log-me");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "GET", route: "/health/live", status: 200, instance: t.config.INSTANCE_ID });
    expect(typeof lines[0].duration_ms).toBe("number");
  });

  test("a 405 or OPTIONS on a known path logs its template; an unknown path is logged cut, with its length", async () => {
    logs.length = 0;
    const long = "a".repeat(16_000);
    expect((await t.request("PUT", `/api/v1/users/${long}`, { headers: { "x-request-id": "log-405" } })).status).toBe(405);
    expect((await t.request("OPTIONS", `/api/v1/users/${long}`, { headers: { "x-request-id": "log-options" } })).status).toBe(204);
    expect((await t.request("GET", `/nothing/${long}`, { headers: { "x-request-id": "log-404" } })).status).toBe(404);
    await logsSettled(logs, (rid) => t.request("GET", "/health/live", { headers: { "x-request-id": rid } }));
    const line = (rid: string) => {
      const found = logs.filter((l) => l.includes(`"request_id":"${rid}"`));
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    expect(JSON.parse(line("log-405"))).toMatchObject({ method: "PUT", route: "/api/v1/users/:id", status: 405 });
    expect(JSON.parse(line("log-options"))).toMatchObject({ method: "OPTIONS", route: "/api/v1/users/:id", status: 204 });
    const notFound = line("log-404");
    expect(notFound.length).toBeLessThan(1_000);
    expect(JSON.parse(notFound).route).toBe(`/nothing/${"a".repeat(247)}…[16009 chars]`);
    // The metrics (off in this app): the same observer labels the 405 with the template, the unknown path "unmatched".
    const metrics = new HttpMetrics();
    const observer = requestObserver(createLogger("silent"), { metrics, routes: () => t.app.routes });
    observer.observe("PUT", undefined, `/api/v1/users/${long}`, 405, 1, undefined);
    observer.observe("GET", undefined, `/nothing/${long}`, 404, 1, undefined);
    const out: string[] = [];
    metrics.render(out);
    const series = out.filter((l) => l.startsWith("http_requests_total{"));
    expect(series.some((l) => l.includes('method="GET",route="unmatched",status="404"'))).toBe(true);
    expect(series.some((l) => l.includes('method="PUT",route="/api/v1/users/:id",status="405"'))).toBe(true);
    expect(series.some((l) => l.includes("aaaa"))).toBe(false);
  });

  test("no password, token or hash ever reaches a log line", async () => {
    logs.length = 0;
    const u = await t.user("secretive@example.com", "Sup3r-Secret-Pw");
    await t.request("GET", "/api/v1/users/me", { token: u.token });
    await t.json("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { password: "An0ther-Secret-Pw" } });
    await t.json("POST", "/api/v1/auth/login", { body: { email: "secretive@example.com", password: "wrong-Secret-Pw" } });
    await logsSettled(logs, (rid) => t.request("GET", "/health/live", { headers: { "x-request-id": rid } }));
    const all = logs.join("\n");
    expect(logs.length).toBeGreaterThan(3);
    for (const secret of ["Sup3r-Secret-Pw", "An0ther-Secret-Pw", "wrong-Secret-Pw", u.token, "$argon2"]) expect(all).not.toContain(secret);
  });
});

describe("errors", () => {
  test("an .all() route allows every method by name: Allow never says ALL", () => {
    const allowed = allowedMethods([
      { method: "ALL", path: "/any/:id" },
      { method: "GET", path: "/read" },
      { method: "ALL", path: "/read" },
    ]);
    expect(allowed("/any/1")).toBe("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    expect(allowed("/read")).toBe("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    expect(allowed("/none")).toBeUndefined();
    expect(allows("GET, HEAD, OPTIONS", "HEAD")).toBe(true);
    expect(allows("GET, HEAD, OPTIONS", "ALL")).toBe(false);
    expect(allows("GET, HEAD, OPTIONS", "POST")).toBe(false);
  });

  test("unknown routes are 404 problem+json; another method on a known route is 405 with Allow", async () => {
    for (const [m, p, status] of [["GET", "/nope", 404], ["GET", "/api/v1/nothing", 404], ["PUT", "/api/v1/users", 405]] as const) {
      const r = await t.json(m, p);
      expect(r.status).toBe(status);
      expect(r.res.headers.get("content-type")).toBe("application/problem+json");
      expect(r.res.headers.get("allow")).toBe(status === 405 ? "GET, HEAD, POST, OPTIONS" : null);
      expect(Object.keys(r.body).sort()).toEqual(["detail", "status", "title", "type"]);
    }
  });

  test("a non-JSON content type is 415 problem+json", async () => {
    const r = await t.json("POST", "/api/v1/users", { body: "email=a", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(r.status).toBe(415);
    expect(r.res.headers.get("content-type")).toBe("application/problem+json");
  });

  test("a body declared over the limit is refused before it is read", async () => {
    const r = await t.request("POST", "/api/v1/users", { body: "{}", headers: { "content-length": String(65 * 1024) } });
    expect(r.status).toBe(413);
  });

  test("an internal failure is 500 problem+json with no stack trace or SQL text", async () => {
    const broken = await makeApp();
    const u = await broken.user();
    await broken.deps.database.client.execute("DROP TABLE preferences");
    const r = await broken.json("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { a: 1 } });
    expect(r.status).toBe(500);
    expect(r.res.headers.get("content-type")).toBe("application/problem+json");
    const text = JSON.stringify(r.body);
    expect(text).not.toMatch(/preferences|SQLITE|select|insert|at .*\.ts/i);
    await broken.close();
  });
});

describe("health", () => {
  test("live is 200; ready and health report database, redis (disabled) and replication", async () => {
    expect((await t.json("GET", "/health/live")).status).toBe(200);
    const ready = await t.json("GET", "/health/ready");
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database.status).toBe("ok");
    expect(ready.body.checks.redis.status).toBe("disabled");
    expect(ready.body.checks.replication.role).toBe("primary");
    const health = await t.json("GET", "/health");
    expect(health.status).toBe(200);
    expect(Object.keys(health.body.checks).sort()).toEqual(["database", "redis", "replication"]);
  });

  test("redis reads ok when REDIS_URL answers and down when it does not (ready stays 200)", async () => {
    const up = await makeApp({ REDIS_URL });
    expect((await up.json("GET", "/health/ready")).body.checks.redis.status).toBe("ok");
    await up.close();
    const down = await makeApp({ REDIS_URL: "redis://127.0.0.1:1" });
    const r = await down.json("GET", "/health/ready");
    expect(r.status).toBe(200);
    expect(r.body.checks.redis.status).toBe("down");
    expect(r.body.status).toBe("degraded");
    await down.close();
  }, 20_000);

  test("ready is 503 when the database does not answer; /health stays 200", async () => {
    const a = await makeApp();
    a.deps.database.close();
    expect((await a.json("GET", "/health/ready")).status).toBe(503);
    const h = await a.json("GET", "/health");
    expect(h.status).toBe(200);
    expect(h.body.checks.database.status).toBe("down");
  });
});

describe("OpenAPI", () => {
  test("UI at /swagger, document at /swagger/json with every route, schemas and tags", async () => {
    const ui = await t.request("GET", "/swagger");
    expect(ui.status).toBe(200);
    expect(ui.headers.get("content-type")).toContain("text/html");
    const doc = await t.json("GET", "/swagger/json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    const paths = doc.body.paths;
    const expected: [string, string][] = [
      ["/api/v1/users", "post"],
      ["/api/v1/auth/login", "post"],
      ["/api/v1/users/me", "get"],
      ["/api/v1/users/{id}", "get"],
      ["/api/v1/users", "get"],
      ["/api/v1/users/{id}", "patch"],
      ["/api/v1/users/{id}", "delete"],
      ["/api/v1/users/{id}/posts", "post"],
      ["/api/v1/users/{id}/posts", "get"],
      ["/api/v1/users/{id}/preferences", "get"],
      ["/api/v1/users/{id}/preferences", "patch"],
    ];
    for (const [p, m] of expected) {
      const op = paths[p]?.[m];
      expect(op, `${m} ${p}`).toBeDefined();
      expect(op.tags?.length, `${m} ${p} tags`).toBeGreaterThan(0);
      expect(Object.keys(op.responses ?? {}).length, `${m} ${p} responses`).toBeGreaterThan(1);
      if (m === "post" || m === "patch") expect(op.requestBody, `${m} ${p} body`).toBeDefined();
    }
    expect(doc.body.components.securitySchemes.bearer.scheme).toBe("bearer");
  });
});
