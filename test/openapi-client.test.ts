// A typed client built the way an API user builds one: openapi-typescript types from the live document,
// openapi-fetch calls (test/fixtures/typed-client/client.ts), strict tsc over both, then the client run
// against the real server. A document that types ids as string | number, or leaves a body out, fails here.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { RunningInstance } from "../src/main/serve.ts";
import { REDIS_URL, ROOT, tempDir, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "typed-admin@example.com", password: "admin-password-1" };
const FIXTURE = join(ROOT, "test/fixtures/typed-client");

let dir: string;
let work: string;
let instance: RunningInstance;

async function run(cmd: string[], cwd = ROOT): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err };
}

beforeAll(async () => {
  dir = tempDir("typed-client-");
  // Under the repository, so the client resolves openapi-fetch and bun's types from its node_modules.
  work = tempDir("typed-client-src-");
  cpSync(FIXTURE, work, { recursive: true });
  instance = await serveApp({ REDIS_URL, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, dir);
}, 60_000);

afterAll(async () => {
  await instance?.stop();
  for (const d of [dir, work]) if (d) rmSync(d, { recursive: true, force: true });
}, 30_000);

test("the client source has no casts and no any", () => {
  const source = readFileSync(join(FIXTURE, "client.ts"), "utf8").replace(/\/\/.*$/gm, "");
  expect(source).not.toMatch(/\bas\s+(?!const\b)[A-Za-z{[(]/);
  expect(source).not.toMatch(/\bany\b/);
  expect(source).not.toMatch(/@ts-(ignore|expect-error|nocheck)/);
  expect(source).not.toMatch(/!\./);
});

test("openapi-typescript types from the live document; the openapi-fetch client compiles under strict tsc and runs", async () => {
  const gen = await run(["bun", join(ROOT, "test/support/openapi-types.ts"), `${instance.url}/swagger/json`, join(work, "api.d.ts")]);
  expect(gen.code, gen.out).toBe(0);
  const types = readFileSync(join(work, "api.d.ts"), "utf8");
  expect(types.includes('"/api/v1/users/{id}"')).toBe(true);
  // Elysia's coercing integers typed every id and count as `string | number`.
  expect(types.match(/\b(id|total|page|limit|status): string \| number\b/g)).toBeNull();

  const tsc = await run([join(ROOT, "node_modules/.bin/tsc"), "-p", join(work, "tsconfig.json")]);
  expect(tsc.out).toBe("");
  expect(tsc.code).toBe(0);

  const client = await run(["bun", join(work, "client.ts"), instance.url, ADMIN.email, ADMIN.password]);
  expect(client.code, client.out).toBe(0);
  const summary = JSON.parse(client.out.trim().split("\n").pop()!);
  expect(summary).toMatchObject({ ok: true, conflictStatus: 409, seconds: 3600, jobs: 1 });
  expect(typeof summary.userId).toBe("number");
  expect(summary.nextPage).toBe(2);
  expect(summary.totalUsers).toBeGreaterThanOrEqual(2);
}, 120_000);
