// The document against the real server: a realistic session of every route, success and error paths, through
// Stoplight Prism's validating proxy (`prism proxy --errors`) in front of a real listener. Prism answers a
// violation of the document (request or response) with its own 500/422 and an sl-violations header; each
// response is also checked with Ajv against the document (status documented, media type, body, required headers).
//
// Two proxies: "strict" validates requests too (the valid calls), "lenient" (--validate-request=false) carries
// the calls that are invalid on purpose (422, 413, 415), which strict Prism would answer itself. Prism's own
// server cannot carry a body that is not JSON under a JSON content type (it never answers), so the 400 for
// malformed JSON is checked directly against the server, with Ajv only; so is a request without any token, which
// Prism answers with its own 401 whatever its flags.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { RunningInstance } from "../src/main/serve.ts";
import { REDIS_URL, ROOT, tempDir, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { collectOutput, freePort } from "./support/process.ts";
import { documentAjv, findOperation, responseViolations, type Doc } from "./support/openapi.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "prism-admin@example.com", password: "admin-password-1" };
const LOGIN_LIMIT = 3;

let dir: string;
let instance: RunningInstance;
let doc: Doc;
let ajv: ReturnType<typeof documentAjv>;
interface Proxy {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
}
/** Every Prism started, to stop them whether or not they came up. */
const children: Subprocess[] = [];
let strict: Proxy;
let lenient: Proxy;

async function startPrism(docFile: string, upstream: string, extra: string[]) {
  const port = await freePort();
  const proc = Bun.spawn(
    ["bun", join(ROOT, "node_modules/@stoplight/prism-cli/dist/index.js"), "proxy", docFile, upstream, "--errors", "-p", String(port), "-h", "127.0.0.1", ...extra],
    { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  children.push(proc);
  const out = collectOutput(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`prism exited: ${out.stdout().slice(-2000)} ${out.stderr().slice(-2000)}`);
      // Not listening yet is asked again.
      return fetch(`${url}/health/live`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status === 200, () => false);
    },
    { timeoutMs: 60_000, intervalMs: 200 },
    "prism to answer",
  );
  return { proc, url };
}

beforeAll(async () => {
  dir = tempDir("prism-");
  instance = await serveApp(
    { REDIS_URL, ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, RATE_LIMIT_LOGIN_PER_MINUTE: String(LOGIN_LIMIT) },
    dir,
  );
  doc = await (await fetch(`${instance.url}/swagger/json`)).json();
  ajv = documentAjv(doc);
  const file = join(dir, "openapi.json");
  await Bun.write(file, JSON.stringify(doc));
  [strict, lenient] = await Promise.all([startPrism(file, instance.url, []), startPrism(file, instance.url, ["--validate-request=false"])]);
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill();
  await Promise.all(children.map((c) => c.exited));
  await instance?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

type Via = "strict" | "lenient" | "direct";
interface Call {
  token?: string;
  body?: unknown;
  /** Sent as it is (not JSON-encoded). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

let lastHeaders = new Headers();
const seen: { via: Via; method: string; route: string; status: number }[] = [];

async function call(via: Via, method: string, path: string, expected: number, opts: Call = {}): Promise<any> {
  const base = via === "strict" ? strict.url : via === "lenient" ? lenient.url : instance.url;
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.raw !== undefined || opts.body !== undefined) {
    body = opts.raw ?? JSON.stringify(opts.body);
    headers["content-type"] = opts.contentType ?? "application/json";
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  const pathname = new URL(base + path).pathname;
  const where = `${via} ${method} ${path}`;
  expect({ where, status: res.status, violations: res.headers.get("sl-violations") }, text.slice(0, 800)).toEqual({
    where,
    status: expected,
    violations: null,
  });
  expect(responseViolations(doc, ajv, method, pathname, { status: res.status, headers: res.headers, body: text }), `${where} ${text.slice(0, 800)}`).toEqual([]);
  seen.push({ via, method, route: findOperation(doc, method, pathname)!.path, status: res.status });
  lastHeaders = res.headers;
  return text ? JSON.parse(text) : null;
}

test("a session of every route, success and error paths: 0 violations", async () => {
  // Anonymous: health, registration, login.
  await call("strict", "GET", "/health/live", 200);
  await call("strict", "GET", "/health/ready", 200);
  await call("strict", "GET", "/health", 200);
  const email = `prism-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const member = await call("strict", "POST", "/api/v1/users", 201, { body: { email, password: "member-password-1", full_name: "Prism Member" } });
  expect(typeof member.id).toBe("number");
  await call("strict", "POST", "/api/v1/users", 409, { body: { email, password: "member-password-1", full_name: "Again" } });
  const other = await call("strict", "POST", "/api/v1/users", 201, {
    body: { email: `other-${email}`, password: "member-password-2", full_name: "Other" },
  });
  const token = (await call("strict", "POST", "/api/v1/auth/login", 200, { body: { email, password: "member-password-1" } })).access_token;
  const admin = (await call("strict", "POST", "/api/v1/auth/login", 200, { body: ADMIN })).access_token;

  // Reads and writes of the member.
  await call("strict", "GET", "/api/v1/users/me", 200, { token });
  await call("strict", "GET", `/api/v1/users/${member.id}`, 200, { token });
  await call("strict", "GET", `/api/v1/users/${member.id}`, 200, { token });
  await call("strict", "GET", "/api/v1/users/987654321", 404, { token });
  const post = await call("strict", "POST", `/api/v1/users/${member.id}/posts`, 201, { token, body: { title: "First", content: "Hello\nworld" } });
  expect(post.user_id).toBe(member.id);
  // A retry with the same Idempotency-Key and body is the stored answer; the same key with another body is a 422.
  const key = { "Idempotency-Key": `post-${crypto.randomUUID()}` };
  const second = await call("strict", "POST", `/api/v1/users/${member.id}/posts`, 201, { token, headers: key, body: { title: "Second", content: "" } });
  const replay = await call("strict", "POST", `/api/v1/users/${member.id}/posts`, 201, { token, headers: key, body: { title: "Second", content: "" } });
  expect(lastHeaders.get("idempotent-replayed")).toBe("true");
  expect(replay.id).toBe(second.id);
  await call("strict", "POST", `/api/v1/users/${member.id}/posts`, 422, { token, headers: key, body: { title: "Other", content: "" } });
  await call("strict", "GET", `/api/v1/users/${member.id}/posts?page=1&limit=1`, 200, { token });
  await call("strict", "GET", `/api/v1/users/${member.id}/posts?page=2&limit=1`, 200, { token });
  await call("strict", "GET", `/api/v1/users/${member.id}/posts`, 200, { token });
  await call("strict", "GET", "/api/v1/users/987654321/posts", 404, { token });
  await call("strict", "POST", `/api/v1/users/${other.id}/posts`, 403, { token, body: { title: "Not mine", content: "x" } });
  await call("strict", "PATCH", `/api/v1/users/${member.id}/preferences`, 200, { token, body: { theme: "dark", size: 12, beta: true, legacy: "x" } });
  await call("strict", "PATCH", `/api/v1/users/${member.id}/preferences`, 200, { token, body: { legacy: null } });
  const prefs = await call("strict", "GET", `/api/v1/users/${member.id}/preferences`, 200, { token });
  expect(prefs).toEqual({ theme: "dark", size: 12, beta: true });
  await call("strict", "PATCH", `/api/v1/users/${other.id}/preferences`, 403, { token, body: { theme: "x" } });
  const detail = await call("strict", "GET", `/api/v1/users/${member.id}`, 200, { token });
  expect(detail.posts.length).toBe(2);
  await call("strict", "PATCH", `/api/v1/users/${member.id}`, 200, { token, body: { full_name: "Prism Member Renamed" } });
  await call("strict", "PATCH", `/api/v1/users/${member.id}`, 409, { token, body: { email: `other-${email}` } });
  await call("strict", "PATCH", `/api/v1/users/${other.id}`, 403, { token, body: { full_name: "Hijack" } });
  await call("strict", "DELETE", `/api/v1/users/${other.id}`, 403, { token });

  // Admin: pages, jobs, cron, cluster, cache.
  await call("strict", "GET", "/api/v1/users", 403, { token });
  await call("strict", "GET", "/api/v1/users?page=1&limit=2", 200, { token: admin });
  await call("strict", "GET", "/api/v1/users", 200, { token: admin });
  const bulk = await call("strict", "POST", "/api/v1/admin/preferences/bulk", 202, {
    token: admin,
    body: { user_ids: [member.id, other.id], preference_updates: { theme: "light", beta: null } },
  });
  const jobId = bulk.jobs[String(member.id)];
  // The jobs reach the queue through the outbox relay: wait until this one is visible.
  await waitUntil(
    async () => (await fetch(`${instance.url}/api/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${admin}` } })).status === 200,
    { timeoutMs: 10_000, intervalMs: 100 },
    "the job to be visible",
  );
  await call("strict", "GET", `/api/v1/jobs/${jobId}`, 200, { token: admin });
  await call("strict", "GET", "/api/v1/jobs/no-such-job", 404, { token: admin });
  await call("strict", "GET", `/api/v1/jobs/${jobId}`, 403, { token });
  const states = await call("strict", "POST", "/api/v1/jobs/status", 200, { token: admin, body: { job_ids: [jobId, "no-such-job"] } });
  expect(states["no-such-job"]).toEqual({ status: "not_found" });
  await call("strict", "GET", "/api/v1/admin/cron", 200, { token: admin });
  await call("strict", "GET", "/api/v1/admin/jobs/failed?limit=5", 200, { token: admin });
  await call("strict", "GET", "/api/v1/admin/operations", 200, { token: admin });
  await call("strict", "GET", "/api/v1/admin/operations", 403, { token });
  await call("strict", "POST", "/api/v1/admin/jobs/no-such-job/retry", 404, { token: admin });
  await call("strict", "POST", "/api/v1/admin/jobs/no-such-job/discard", 404, { token: admin });
  await call("strict", "GET", "/cluster/stats", 200, { token: admin });
  await call("strict", "GET", "/cache/stats", 200, { token: admin });
  await call("strict", "GET", "/cache/stats", 403, { token });

  // 401: a token that is not one (Prism itself only checks that one is sent), and a revoked one.
  await call("strict", "GET", "/api/v1/users/me", 401, { token: "not-a-token" });
  await call("strict", "GET", "/cluster/stats", 401, { token: "not-a-token" });
  const spare = (await call("strict", "POST", "/api/v1/auth/login", 200, { body: { email, password: "member-password-1" } })).access_token;
  await call("strict", "POST", "/api/v1/auth/logout", 204, { token: spare, body: {} });
  await call("strict", "GET", "/api/v1/users/me", 401, { token: spare });

  // Invalid on purpose: through the proxy that validates responses only.
  await call("lenient", "GET", "/api/v1/users/0b1", 422, { token });
  await call("lenient", "GET", "/api/v1/users?limit=0x10", 422, { token: admin });
  await call("lenient", "POST", "/api/v1/users", 422, { body: { email: "x@example.com", password: "member-password-1", full_name: "a\u0000b" } });
  await call("lenient", "POST", `/api/v1/users/${member.id}/posts`, 422, { token, body: { title: "", content: "x" } });
  await call("lenient", "POST", "/api/v1/jobs/status", 422, { token: admin, body: { job_ids: ["bad id!"] } });
  await call("lenient", "POST", "/api/v1/auth/login", 415, { raw: "email=a", contentType: "text/plain" });
  await call("lenient", "POST", "/api/v1/users", 413, { body: { email: "x".repeat(70_000) } });
  // Without any token Prism answers 401 itself (it checks a token is sent): the server's own answer, directly.
  await call("direct", "GET", "/api/v1/users/me", 401);
  await call("direct", "PATCH", `/api/v1/users/${member.id}`, 401, { body: { full_name: "x" } });

  // 429: the per-account login limit.
  const victim = `limited-${email}`;
  await call("strict", "POST", "/api/v1/users", 201, { body: { email: victim, password: "member-password-3", full_name: "Limited" } });
  for (let i = 0; i < LOGIN_LIMIT; i++) await call("strict", "POST", "/api/v1/auth/login", 401, { body: { email: victim, password: "wrong-password" } });
  await call("strict", "POST", "/api/v1/auth/login", 429, { body: { email: victim, password: "wrong-password" } });

  // 400: malformed JSON, which Prism's server cannot carry; checked against the document with Ajv.
  await call("direct", "POST", "/api/v1/auth/login", 400, { raw: '{"email": ' });

  // Deletion last: 204 without a body, then the user is gone.
  await call("strict", "POST", "/api/v1/auth/logout", 204, { token, body: { all: true } });
  const again = (await call("strict", "POST", "/api/v1/auth/login", 200, { body: { email, password: "member-password-1" } })).access_token;
  await call("strict", "DELETE", `/api/v1/users/${member.id}`, 204, { token: again });
  await call("strict", "DELETE", `/api/v1/users/${other.id}`, 204, { token: admin });
  await call("strict", "DELETE", `/api/v1/users/${other.id}`, 404, { token: admin });

  // Every documented operation was exercised, and every error status of the contract was seen.
  const ops = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item as object).map((m) => `${m.toUpperCase()} ${p}`));
  const exercised = new Set(seen.map((s) => `${s.method} ${s.route}`));
  expect(ops.filter((o) => !exercised.has(o))).toEqual([]);
  const statuses = new Set(seen.map((s) => s.status));
  for (const s of [200, 201, 202, 204, 400, 401, 403, 404, 409, 413, 415, 422, 429]) expect(statuses.has(s), `status ${s}`).toBe(true);
  console.log(`prism conformance: ${seen.length} requests, ${exercised.size} operations, statuses ${[...statuses].sort((a, b) => a - b).join(" ")}, 0 violations`);
}, 180_000);
