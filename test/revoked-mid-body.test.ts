// A write is admitted when its headers arrive, and its body may take up to BODY_ARRIVAL_MS more: a session revoked
// (logout, password change) or admin rights taken (demotion) meanwhile must not let the write commit once the rest
// of the body comes. Through a real listener and raw sockets: the declared writes' fast answers, the app's way
// (the other writes with an access level, a keyed write, a chunked body), with and without Redis, across two
// instances sharing Redis, and the app alone (app.handle, a body still streaming).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { setAdmin } from "../src/modules/users/service.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { makeApp, REDIS_URL, serveApp, tempDir, testPrefix, TEST_TIMEOUT_MS, WIRINGS } from "./helpers.ts";
import { partialRequest, type RawResponse } from "./support/raw-http.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const PASSWORD = "owner-password-1";

function client(url: string) {
  const call = (method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(url + path, {
      method,
      headers: { "content-type": "application/json", ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const login = async (email: string, password = PASSWORD) => (await (await call("POST", "/api/v1/auth/login", undefined, { email, password })).json()).access_token as string;
  const account = async () => {
    const email = `mid-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const created = await (await call("POST", "/api/v1/users", undefined, { email, password: PASSWORD, full_name: "Owner" })).json();
    return { id: created.id as number, email, token: await login(email) };
  };
  return { call, login, account };
}

/** Rows of a table of the instance's database (the writes a refused request must not have made). */
function rows(dir: string, table: string): number {
  const db = new Database(join(dir, "app.db"), { readonly: true });
  try {
    return (db.query(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

type Started = ReturnType<typeof partialRequest> & { name: string };

/**
 * Starts each request with the first bytes of its body, and waits until the instance holds every one of them (its
 * auth decided from the headers, its body awaited). The token's session is already in the instance's memory (the
 * caller asked something with it), so the decision is made at once.
 */
async function begin(instance: RunningInstance, requests: [name: string, method: string, path: string, headers: Record<string, string>, body: string][]): Promise<Started[]> {
  const before = instance.deps.inFlight();
  const started = requests.map(([name, method, path, headers, body]) => ({ name, ...partialRequest(instance.url, method, path, { "content-type": "application/json", ...headers }, body, 3) }));
  await waitUntil(() => instance.deps.inFlight() >= before + requests.length, 10_000, "the requests to wait for their bodies");
  return started;
}

/** Sends the rest of each body; every answer is the refusal `status`, problem+json. */
async function expectRefused(started: Started[], status: 401 | 403): Promise<void> {
  const answers: [string, RawResponse][] = [];
  for (const s of started) answers.push([s.name, await s.finish()]);
  expect(answers.map(([name, a]) => [name, a.status, a.headers["content-type"]])).toEqual(started.map((s) => [s.name, status, "application/problem+json"]));
  for (const [, a] of answers) expect(JSON.parse(a.body)).toMatchObject({ status });
}

const bearer = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra });

describe.each(WIRINGS)("a session revoked while a write's body arrives, over $wiring", ({ env, redis }) => {
  let served: RunningInstance;
  let dir: string;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    dir = tempDir("mid-body-");
    served = await serveApp({ ...env, JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" }, dir);
    expect(served.deps.redis !== null).toBe(redis);
    c = client(served.url);
  });
  afterAll(async () => {
    await served.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a logout: every write the token began is 401 once its body is in, and nothing is written", async () => {
    const u = await c.account();
    const other = await c.account();
    expect((await c.call("GET", "/api/v1/users/me", u.token)).status).toBe(200);
    const written = { keys: rows(dir, "idempotency_keys"), outbox: rows(dir, "outbox") };
    const t = bearer(u.token);
    const started = await begin(served, [
      // The declared writes' fast answers.
      ["fast: PATCH user", "PATCH", `/api/v1/users/${u.id}`, t, '{"full_name":"Taken Over"}'],
      ["fast: PATCH preferences", "PATCH", `/api/v1/users/${u.id}/preferences`, t, '{"theme":"evil"}'],
      ["fast: POST post", "POST", `/api/v1/users/${u.id}/posts`, t, '{"title":"evil","content":"posted after the logout"}'],
      // The app's way: a keyed write, a chunked body, and the other writes with an access level.
      ["app: keyed PATCH preferences", "PATCH", `/api/v1/users/${u.id}/preferences`, bearer(u.token, { "idempotency-key": "mid-body-1" }), '{"theme":"keyed"}'],
      ["app: chunked PATCH user", "PATCH", `/api/v1/users/${u.id}`, bearer(u.token, { "transfer-encoding": "chunked" }), '{"full_name":"Chunked"}'],
      ["app: DELETE user", "DELETE", `/api/v1/users/${u.id}`, t, "{}  "],
      ["app: logout", "POST", "/api/v1/auth/logout", t, '{"all":true}'],
    ]);
    expect((await c.call("POST", "/api/v1/auth/logout", u.token)).status).toBe(204);
    expect((await c.call("GET", "/api/v1/users/me", u.token)).status).toBe(401);
    await expectRefused(started, 401);

    const fresh = await c.login(u.email);
    const me = await (await c.call("GET", `/api/v1/users/${u.id}`, fresh)).json();
    expect(me.user).toMatchObject({ id: u.id, email: u.email, full_name: "Owner" });
    expect(me.posts).toEqual([]);
    expect(me.preferences).toEqual({});
    expect({ keys: rows(dir, "idempotency_keys"), outbox: rows(dir, "outbox") }).toEqual(written);
    // Only that session ended: the user's other one and other users are untouched.
    expect((await c.call("GET", "/api/v1/users/me", other.token)).status).toBe(200);
  });

  test("a password change by the owner: a stolen token's takeover (new password and email) is 401 once its body is in", async () => {
    const u = await c.account();
    const stolen = await c.login(u.email);
    expect((await c.call("GET", "/api/v1/users/me", stolen)).status).toBe(200);
    const takeover = '{"password":"attackerpw1","email":"attacker@evil.io"}';
    const started = await begin(served, [
      ["fast: PATCH user", "PATCH", `/api/v1/users/${u.id}`, bearer(stolen), takeover],
      ["app: keyed PATCH user", "PATCH", `/api/v1/users/${u.id}`, bearer(stolen, { "idempotency-key": "mid-body-2" }), takeover],
      ["fast: POST post", "POST", `/api/v1/users/${u.id}/posts`, bearer(stolen), '{"title":"evil","content":"x"}'],
    ]);
    expect((await c.call("PATCH", `/api/v1/users/${u.id}`, u.token, { password: "owner-password-2" })).status).toBe(200);
    expect((await c.call("GET", "/api/v1/users/me", stolen)).status).toBe(401);
    await expectRefused(started, 401);

    expect((await c.call("POST", "/api/v1/auth/login", undefined, { email: "attacker@evil.io", password: "attackerpw1" })).status).toBe(401);
    const fresh = await c.login(u.email, "owner-password-2");
    const me = await (await c.call("GET", `/api/v1/users/${u.id}`, fresh)).json();
    expect(me.user.email).toBe(u.email);
    expect(me.posts).toEqual([]);
  });

  test("a demotion: an administrator's writes on other users and admin routes are 403 once their body is in, and nothing is written", async () => {
    const admin = await c.account();
    const v = await c.account();
    await setAdmin(served.deps, admin.id, true);
    expect((await c.call("GET", "/api/v1/users", admin.token)).status).toBe(200);
    const written = { outbox: rows(dir, "outbox") };
    const t = bearer(admin.token);
    const started = await begin(served, [
      ["fast: PATCH another's preferences", "PATCH", `/api/v1/users/${v.id}/preferences`, t, '{"theme":"admin-set"}'],
      ["fast: PATCH another user", "PATCH", `/api/v1/users/${v.id}`, t, '{"full_name":"Renamed"}'],
      ["app: bulk preferences", "POST", "/api/v1/admin/preferences/bulk", t, JSON.stringify({ user_ids: [v.id], preference_updates: { theme: "bulk" } })],
      ["app: job status", "POST", "/api/v1/jobs/status", t, JSON.stringify({ job_ids: [crypto.randomUUID()] })],
      ["app: DELETE another user", "DELETE", `/api/v1/users/${v.id}`, t, "{}  "],
    ]);
    await setAdmin(served.deps, admin.id, false);
    expect((await c.call("GET", "/api/v1/users", admin.token)).status).toBe(403);
    await expectRefused(started, 403);

    const them = await (await c.call("GET", `/api/v1/users/${v.id}`, v.token)).json();
    expect(them.user).toMatchObject({ id: v.id, full_name: "Owner" });
    expect(them.preferences).toEqual({});
    expect({ outbox: rows(dir, "outbox") }).toEqual(written);
    // The demoted token still works as its user's own.
    expect((await c.call("PATCH", `/api/v1/users/${admin.id}`, admin.token, { full_name: "Demoted" })).status).toBe(200);
  });
});

test("a logout while the write hashes its new password (after its turn's check): the write is refused just before its transaction", async () => {
  const dir = tempDir("mid-body-hash-");
  const served = await serveApp({ JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" }, dir);
  try {
    const c = client(served.url);
    const hashing = served.deps.hashing;
    const run = hashing.run.bind(hashing);
    for (const keyed of [false, true]) {
      const u = await c.account();
      const stolen = await c.login(u.email);
      // The next hash (the stolen token's new password) waits until the token is revoked.
      let hashStarted!: () => void;
      const started = new Promise<void>((r) => (hashStarted = r));
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      hashing.run = (async (fn: () => Promise<unknown>) => {
        hashing.run = run;
        hashStarted();
        await released;
        return run(fn);
      }) as typeof hashing.run;
      const keys = rows(dir, "idempotency_keys");
      const takeover = c.call("PATCH", `/api/v1/users/${u.id}`, stolen, { password: "attackerpw1", email: `attacker-${keyed}@evil.io` }, keyed ? { "idempotency-key": "mid-hash" } : {});
      await started;
      expect((await c.call("POST", "/api/v1/auth/logout", stolen)).status).toBe(204);
      release();
      const r = await takeover;
      expect({ keyed, status: r.status, type: r.headers.get("content-type") }).toEqual({ keyed, status: 401, type: "application/problem+json" });
      expect((await c.call("POST", "/api/v1/auth/login", undefined, { email: `attacker-${keyed}@evil.io`, password: "attackerpw1" })).status).toBe(401);
      const me = await (await c.call("GET", "/api/v1/users/me", u.token)).json();
      expect(me.user.email).toBe(u.email);
      expect(rows(dir, "idempotency_keys")).toBe(keys);
    }
  } finally {
    await served.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("across two instances sharing Redis: a logout on one refuses the writes the other began, once their body is in", async () => {
  const dir = tempDir("mid-body-two-");
  const env = { REDIS_URL, REDIS_PREFIX: testPrefix("mid-body"), JOBS_WORKER_ENABLED: "false", CRON_ENABLED: "false" };
  const a = await serveApp({ ...env, INSTANCE_ID: "mid-body-a" }, dir);
  const b = await serveApp({ ...env, INSTANCE_ID: "mid-body-b" }, dir);
  try {
    const ca = client(a.url);
    const cb = client(b.url);
    const u = await ca.account();
    expect((await ca.call("GET", "/api/v1/users/me", u.token)).status).toBe(200);
    const started = await begin(a, [
      ["fast: PATCH user", "PATCH", `/api/v1/users/${u.id}`, bearer(u.token), '{"email":"attacker@evil.io"}'],
      ["app: DELETE user", "DELETE", `/api/v1/users/${u.id}`, bearer(u.token), "{}  "],
    ]);
    expect((await cb.call("POST", "/api/v1/auth/logout", u.token)).status).toBe(204);
    // The contract's bound for the other instance to know (within a second), generous here.
    await waitUntil(async () => (await ca.call("GET", "/api/v1/users/me", u.token)).status === 401, 5_000, "instance a to refuse the token");
    await expectRefused(started, 401);
    const me = await (await ca.call("GET", "/api/v1/users/me", await ca.login(u.email))).json();
    expect(me.user).toMatchObject({ id: u.id, email: u.email });
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the app alone (app.handle): a body still streaming when its session is revoked is refused once it is read", async () => {
  const t = await makeApp({});
  try {
    const u = await t.user();
    expect((await t.request("GET", "/api/v1/users/me", { token: u.token })).status).toBe(200);
    const encoder = new TextEncoder();
    let pulled!: () => void;
    const reading = new Promise<void>((r) => (pulled = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let sent = false;
    // The parser reads the body only after the auth decision (request-context.ts): its first pull comes after it.
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (sent) return ctl.close();
        pulled();
        await released;
        ctl.enqueue(encoder.encode('{"email":"attacker@evil.io","password":"attackerpw1"}'));
        sent = true;
      },
    });
    const answer = t.app.handle(
      new Request(`http://localhost/api/v1/users/${u.id}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
        body,
        duplex: "half",
      } as RequestInit),
    );
    await reading;
    expect((await t.request("POST", "/api/v1/auth/logout", { token: u.token })).status).toBe(204);
    release();
    const r = await answer;
    expect(r.status).toBe(401);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    const me = await t.json("GET", "/api/v1/users/me", { token: await t.login(u.email, "correct-horse") });
    expect(me.body.user.email).toBe(u.email);
  } finally {
    await t.close();
  }
});
