// `bun run users -- demote|promote|revoke <email>`: the one way to change admin rights, and to end every session of
// an account from the shell. A demotion reaches every
// instance sharing the Redis through the cache bus: the admin's token loses its admin routes on both instances
// without a restart and long before any cache entry expires, and keeps working as the user's own token. Without
// Redis, the command tells the instance on its machine through the private listener (INTERNAL_TOKEN) instead.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { dropPrefix, makeApp, REDIS_URL, tempDir, testEnv, testPrefix, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, spawnBun, spawnService, waitFor, type Spawned } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const EMAIL = "cli-admin@example.com";
const dir = tempDir("users-cli-");
const prefix = testPrefix("users-cli");
// A cache entry would live this long: seeing the change well within it proves the bus carried it.
const TTL = "300";
let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  // The command runs with the environment of instance a, its INSTANCE_ID included (as beside it on a machine).
  a = await makeApp({ REDIS_URL, REDIS_PREFIX: prefix, CACHE_TTL_SECONDS: TTL, INSTANCE_ID: "machine-a", ADMIN_EMAIL: EMAIL, ADMIN_PASSWORD: "admin-password-1" }, dir);
  b = await makeApp({ REDIS_URL, REDIS_PREFIX: prefix, CACHE_TTL_SECONDS: TTL, INSTANCE_ID: "machine-b" }, dir);
});
afterAll(async () => {
  // The prefix is this file's own (makeApp drops only prefixes it made): dropped while a's client is open.
  const r = a.deps.redis;
  if (r?.isReady) await dropPrefix(r, prefix);
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the command as an operator would, with the instances' environment. */
async function users(...args: string[]) {
  const env = testEnv({ REDIS_URL, REDIS_PREFIX: prefix, CACHE_TTL_SECONDS: TTL, INSTANCE_ID: "machine-a", LOG_LEVEL: "warn" }, dir);
  const p = spawnBun(["src/users-cli.ts", ...args], env);
  const code = await p.finished();
  return { code, out: p.stdout(), err: p.stderr() };
}

describe("bun run users", () => {
  test("demote takes admin rights from a live token on every instance at once; promote gives them back", async () => {
    const token = await a.login(EMAIL, "admin-password-1");
    const adminList = (t: TestApp) => t.request("GET", "/api/v1/users?limit=1", { token }).then((r) => r.status);
    // Both instances have the session's state cached (admin) before the change.
    expect([await adminList(a), await adminList(b)]).toEqual([200, 200]);

    const demoted = await users("demote", EMAIL);
    expect(demoted.code).toBe(0);
    expect(demoted.out).toContain("is no longer an administrator");
    await waitUntil(async () => (await adminList(a)) === 403 && (await adminList(b)) === 403, 10_000, "both instances to refuse the admin route");
    // Still the user's own token.
    expect((await b.request("GET", "/api/v1/users/me", { token })).status).toBe(200);
    expect((await b.json("GET", "/api/v1/users/me", { token })).body.user.is_admin).toBe(false);

    const promoted = await users("promote", EMAIL);
    expect(promoted.code).toBe(0);
    await waitUntil(async () => (await adminList(a)) === 200 && (await adminList(b)) === 200, 10_000, "both instances to allow the admin route again");
  }, 60_000);

  test("promote gives an existing token admin rights on every instance at once, no new login needed", async () => {
    const u = await a.user("cli-plain@example.com", "plain-password-1");
    const adminList = (t: TestApp) => t.request("GET", "/api/v1/users?limit=1", { token: u.token }).then((r) => r.status);
    const isAdmin = (t: TestApp) => t.json("GET", "/api/v1/users/me", { token: u.token }).then((r) => r.body.user.is_admin);
    // Both instances have the session's state and the user's read cached (not an admin) before the change.
    expect([await adminList(a), await adminList(b), await isAdmin(a), await isAdmin(b)]).toEqual([403, 403, false, false]);

    const promoted = await users("promote", u.email);
    expect(promoted.code).toBe(0);
    expect(promoted.out).toContain("is now an administrator; every instance sharing this Redis was told: the account's tokens have admin rights there now");
    await waitUntil(async () => (await adminList(a)) === 200 && (await adminList(b)) === 200, 10_000, "both instances to allow the admin route");
    expect([await isAdmin(a), await isAdmin(b)]).toEqual([true, true]);

    const demoted = await users("demote", u.email);
    expect(demoted.out).toContain("the account's tokens have lost admin rights");
    await waitUntil(async () => (await adminList(a)) === 403 && (await adminList(b)) === 403, 10_000, "both instances to refuse the admin route");
    expect([await isAdmin(a), await isAdmin(b)]).toEqual([false, false]);
  }, 60_000);

  test("revoke ends every session of the account on every instance at once: a demoted admin's leaked token stays dead after a re-promotion", async () => {
    const u = await a.user("cli-leaked@example.com", "leaked-password-1");
    const second = await b.login(u.email, "leaked-password-1");
    expect((await users("promote", u.email)).code).toBe(0);
    const me = (t: TestApp, token: string) => t.request("GET", "/api/v1/users/me", { token }).then((r) => r.status);
    // Both instances have both sessions' states cached (live) before the command.
    expect([await me(a, u.token), await me(b, u.token), await me(a, second), await me(b, second)]).toEqual([200, 200, 200, 200]);
    expect((await users("demote", u.email)).code).toBe(0);

    const revoked = await users("revoke", u.email);
    expect(revoked).toMatchObject({ code: 0, err: "" });
    expect(revoked.out).toContain(`${u.email} (user ${u.id}) has no session left (every one is revoked); every instance sharing this Redis was told: the account's tokens are refused there now`);
    await waitUntil(
      async () => (await Promise.all([me(a, u.token), me(b, u.token), me(a, second), me(b, second)])).every((s) => s === 401),
      10_000,
      "both instances to refuse both tokens",
    );
    // Promoted again, the old tokens stay refused; a new login is an admin's.
    expect((await users("promote", u.email)).code).toBe(0);
    expect([await me(a, u.token), await me(b, second), (await b.request("GET", "/api/v1/users?limit=1", { token: u.token })).status]).toEqual([401, 401, 401]);
    const fresh = await a.login(u.email, "leaked-password-1");
    expect((await b.request("GET", "/api/v1/users?limit=1", { token: fresh })).status).toBe(200);
  }, 60_000);

  test("an unknown email, an unknown action and a no-op say so", async () => {
    const unknown = await users("demote", "nobody@example.com");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("no account has the email");
    const usage = await users("delete", EMAIL);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("usage: bun run users");
    const noop = await users("promote", EMAIL);
    expect(noop.code).toBe(0);
    expect(noop.out).toContain("already an administrator");
  }, 60_000);
});

describe("ADMIN_EMAIL at start", () => {
  test("an account registered first with another password is not made an admin; one with ADMIN_PASSWORD is", async () => {
    const d = tempDir("admin-email-");
    try {
      const first = await makeApp({}, d);
      await first.user("boss@example.com", "attacker-pass-1");
      await first.user("ops@example.com", "operator-secret-99");
      await first.close();
      const logs: string[] = [];
      const boss = await makeApp({ ADMIN_EMAIL: "boss@example.com", ADMIN_PASSWORD: "operator-secret-99" }, d, { logs });
      const squatter = await boss.login("boss@example.com", "attacker-pass-1");
      expect((await boss.request("GET", "/api/v1/users", { token: squatter })).status).toBe(403);
      expect((await boss.json("POST", "/api/v1/auth/login", { body: { email: "boss@example.com", password: "operator-secret-99" } })).status).toBe(401);
      expect(logs.some((l) => l.includes('"level":"error"') && l.includes("was not made an administrator"))).toBe(true);
      await boss.close();
      const ops = await makeApp({ ADMIN_EMAIL: "ops@example.com", ADMIN_PASSWORD: "operator-secret-99" }, d);
      const token = await ops.login("ops@example.com", "operator-secret-99");
      expect((await ops.request("GET", "/api/v1/users", { token })).status).toBe(200);
      await ops.close();
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("without Redis: a real instance process and the command beside it", () => {
  const soloDir = tempDir("users-cli-solo-");
  const SOLO = "solo-admin@example.com";
  let instance: Spawned | undefined;
  afterAll(async () => {
    await instance?.stop();
    rmSync(soloDir, { recursive: true, force: true });
  });

  test("demote reaches the running instance through its internal listener at once; a command it cannot authenticate says so", async () => {
    const internalPort = String(await freePort());
    // No REDIS_URL. The same environment for the instance and the command, as on one machine.
    const env = testEnv({ CACHE_TTL_SECONDS: TTL, INTERNAL_TOKEN: "solo-internal-token-0123", INTERNAL_PORT: internalPort }, soloDir);
    instance = spawnService({ ...env, ADMIN_EMAIL: SOLO, ADMIN_PASSWORD: "admin-password-1" }, await freePort());
    await waitFor(`${instance.url}/health/ready`);
    const { url } = instance;
    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: SOLO, password: "admin-password-1" }),
    });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const adminList = () => fetch(`${url}/api/v1/users?limit=1`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    // The session's state is in the instance's cache (admin), for the whole TTL unless it is told.
    expect([await adminList(), await adminList()]).toEqual([200, 200]);

    const run = async (extra: Record<string, string>, ...args: string[]) => {
      const p = spawnBun(["src/users-cli.ts", ...args], { ...env, ...extra });
      return { code: await p.finished(), out: p.stdout(), err: p.stderr() };
    };
    const demoted = await run({}, "demote", SOLO);
    expect(demoted).toMatchObject({ code: 0, err: "" });
    expect(demoted.out).toContain(`is no longer an administrator; the instance on 127.0.0.1:${internalPort} was told`);
    // The result line is all it prints: the serving instance's notes (single-instance mode) are not a command's.
    expect(demoted.out.trim().split("\n")).toHaveLength(1);
    // Bounded far below the TTL: only the message could have dropped the cached state so soon.
    await waitUntil(async () => (await adminList()) === 403, 5_000, "the instance to refuse the admin route");

    // A command with another token changes the database but cannot tell the instance: it says so and exits 1,
    // and the instance keeps its cached (demoted) state.
    const promoted = await run({ INTERNAL_TOKEN: "not-the-instance-token-0" }, "promote", SOLO);
    expect(promoted.code).toBe(1);
    expect(promoted.err).toContain(`is now an administrator in the database, but the instance on 127.0.0.1:${internalPort} answered 401`);
    await Bun.sleep(1_500); // past the session memo
    expect(await adminList()).toBe(403);
    // Told, the instance drops the account's cached state and read: the same token is an admin's at once.
    expect((await run({}, "demote", SOLO)).code).toBe(0);
    expect(await adminList()).toBe(403);
    const told = await run({}, "promote", SOLO);
    expect(told).toMatchObject({ code: 0, err: "" });
    // It names the one instance it told, and says plainly that any other on this database is not told.
    expect(told.out.trim()).toEndWith(
      `is now an administrator; the instance on 127.0.0.1:${internalPort} was told: the account's tokens have admin rights there now; ` +
        `any other instance on this database is not told (nothing carries it there without REDIS_URL): the account's tokens have admin rights there once its cached state of the account expires, within ${TTL} s`,
    );
    await waitUntil(async () => (await adminList()) === 200, 5_000, "the instance to allow the admin route");
    const me = await fetch(`${url}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<{ user: { is_admin: boolean } }>);
    expect(me.user.is_admin).toBe(true);

    // revoke reaches the instance the same way: the token is refused at once, long before the TTL.
    const revoked = await run({}, "revoke", SOLO);
    expect(revoked).toMatchObject({ code: 0, err: "" });
    expect(revoked.out).toContain(`has no session left (every one is revoked); the instance on 127.0.0.1:${internalPort} was told: the account's tokens are refused there now`);
    await waitUntil(async () => (await adminList()) === 401, 5_000, "the instance to refuse the revoked token");

    // With nothing listening on the internal port, there is no one to tell.
    await instance.stop();
    const alone = await run({}, "demote", SOLO);
    expect(alone.code).toBe(0);
    expect(alone.out).toContain(`is no longer an administrator; no instance listens on 127.0.0.1:${internalPort}`);
    expect(alone.out).toContain(`any other instance on this database is not told (nothing carries it there without REDIS_URL)`);
  }, 90_000);
});
