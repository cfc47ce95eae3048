// What the hot-path changes must keep: x-request-id on every kind of response (a cached Response returned by
// the handler, objects, 201, 204, errors, OpenAPI), one log line per request, and id validation.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { makeApp, REDIS_URL, type TestApp } from "./helpers.ts";

let t: TestApp;
const logs: string[] = [];
let u: { id: number; token: string };
beforeAll(async () => {
  t = await makeApp({ REDIS_URL }, undefined, { logs });
  u = await t.user();
});
afterAll(() => t.close());

test("x-request-id is echoed (or made) on cached reads, objects, 201, 204, errors and OpenAPI, with one log line each", async () => {
  const v = await t.user();
  await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  const cases: [string, string, Record<string, unknown>, number][] = [
    ["GET", `/api/v1/users/${u.id}`, { token: u.token }, 200],
    ["GET", `/api/v1/users/${u.id}/posts?limit=2`, { token: u.token }, 200],
    ["POST", `/api/v1/users/${u.id}/posts`, { token: u.token, body: { title: "t", content: "c" } }, 201],
    ["PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "N" } }, 200],
    ["DELETE", `/api/v1/users/${v.id}`, { token: v.token }, 204],
    ["GET", `/api/v1/users/0`, { token: u.token }, 422],
    ["GET", `/api/v1/users/abc`, { token: u.token }, 422],
    ["GET", `/api/v1/users/1.5`, { token: u.token }, 422],
    ["GET", `/api/v1/users/99999999`, { token: u.token }, 404],
    ["GET", `/api/v1/users/${u.id}`, {}, 401],
    ["GET", "/swagger/json", {}, 200],
  ];
  for (const [i, [method, path, opts, status]] of cases.entries()) {
    const rid = `rid-${i}`;
    const r = await t.request(method, path, { ...(opts as object), headers: { "x-request-id": rid } });
    expect({ path, method, status: r.status }).toEqual({ path, method, status });
    expect(r.headers.get("x-request-id")).toBe(rid);
    await r.arrayBuffer();
  }
  await (await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token })).arrayBuffer(); // refill after the PATCH
  const generated = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  expect(generated.headers.get("x-cache")).toBe("hit-l1");
  expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  await Bun.sleep(20);
  const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  for (let i = 0; i < cases.length; i++) {
    const mine = lines.filter((l) => l.request_id === `rid-${i}`);
    expect(mine).toHaveLength(1);
    expect(mine[0].status).toBe(cases[i]![3]);
  }
});

test("the cached detail body is the same JSON the database path produces", async () => {
  const first = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  const cachedText = await first.text();
  await t.deps.cache.invalidateTags([`user:${u.id}`]);
  const fresh = await t.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
  expect(fresh.headers.get("x-cache")).toBe("miss");
  expect(await fresh.text()).toBe(cachedText);
});
