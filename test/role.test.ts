// Role on positive evidence only: under LITEFS_DIR an instance is the primary when LiteFS says so (its API's
// isPrimary, or the database file it presents writable), never merely because `.primary` is missing. The
// undecided states (file missing with the API unreachable, or the API saying "no primary") are a replica
// that knows no primary: writes answer 503 with Retry-After, and no database-writing work runs there.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JOB_TYPES } from "../src/modules/jobs/types.ts";
import { liteFsRole } from "../src/platform/cluster/role.ts";
import { makeApp, tempDir, TEST_TIMEOUT_MS } from "./helpers.ts";
import { liteFsNode } from "./support/litefs-api.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const dirs: string[] = [];
const mount = () => {
  const d = tempDir("role-");
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Waits until the role (which polls LiteFS's API) reaches `kind`. */
async function until(role: { state(): { kind: string } }, kind: string) {
  await waitUntil(() => role.state().kind === kind, 5_000, `the role to become ${kind}`);
  return role.state().kind;
}

describe("liteFsRole: evidence", () => {
  const fast = { fileMaxAgeMs: 0, pollMs: 50, apiTimeoutMs: 200 };

  test("the API's isPrimary makes a primary; a replica's .primary names its primary", async () => {
    const dir = mount();
    const node = liteFsNode({ dir, hostname: "m-ams-1", state: { kind: "primary" } });
    const role = liteFsRole(dir, { ...fast, apiUrl: node.url });
    try {
      await role.ready();
      expect(role.state()).toEqual({ kind: "primary" });
      expect(role.isPrimary()).toBe(true);
      node.follow("m-ams-2");
      expect(role.state()).toEqual({ kind: "replica", primary: "m-ams-2" });
      expect(role.primaryName()).toBe("m-ams-2");
      expect(role.isPrimary()).toBe(false);
    } finally {
      role.close();
      node.close();
    }
  });

  test("file missing, API reachable but connected to no primary: undecided, not primary", async () => {
    const dir = mount();
    const node = liteFsNode({ dir, hostname: "m-syd-1", state: { kind: "replica", primary: "m-ams-1" } });
    const role = liteFsRole(dir, { ...fast, apiUrl: node.url });
    try {
      await role.ready();
      expect(role.state().kind).toBe("replica");
      node.disconnect();
      expect(await until(role, "undecided")).toBe("undecided");
      expect(role.isPrimary()).toBe(false);
      expect(role.primaryName()).toBeNull();
    } finally {
      role.close();
      node.close();
    }
  });

  test("file missing, API unreachable: undecided; an old answer from the API ages out", async () => {
    const dir = mount();
    const node = liteFsNode({ dir, hostname: "m-ams-1", state: { kind: "primary" } });
    const role = liteFsRole(dir, { ...fast, apiUrl: node.url });
    try {
      await role.ready();
      expect(role.isPrimary()).toBe(true);
      node.apiDown();
      expect(await until(role, "undecided")).toBe("undecided");
      expect(role.isPrimary()).toBe(false);
      node.apiUp();
      expect(await until(role, "primary")).toBe("primary");
    } finally {
      role.close();
      node.close();
    }
  });

  test("no API configured and no .primary: undecided (the old code called this primary)", async () => {
    const role = liteFsRole(mount(), { ...fast, apiUrl: null });
    await role.ready();
    expect(role.state().kind).toBe("undecided");
    role.close();
  });

  test("the database file's mode in the mount: writable (0666) is the primary, read-only (0444) is not", async () => {
    const dir = mount();
    const db = join(dir, "app.db");
    writeFileSync(db, "");
    const role = liteFsRole(dir, { ...fast, apiUrl: null, databaseFile: db });
    try {
      chmodSync(db, 0o444);
      expect(role.state().kind).toBe("undecided");
      chmodSync(db, 0o666);
      expect(role.state().kind).toBe("primary");
      writeFileSync(join(dir, ".primary"), "m-ams-1\n");
      expect(role.state()).toEqual({ kind: "replica", primary: "m-ams-1" });
    } finally {
      role.close();
    }
  });
});

describe("an undecided instance", () => {
  test("answers writes 503 problem+json with Retry-After (never 500), reads 200, and recovers without a restart", async () => {
    // The database the primary migrated, mounted here; the API stand-in says this node is a disconnected replica.
    const data = mount();
    const seed = await makeApp({}, data);
    const { id, token } = await seed.user("seed@example.com", "password-1");
    await seed.close();
    const dir = mount();
    mkdirSync(dir, { recursive: true });
    const node = liteFsNode({ dir, hostname: "m-syd-1", state: { kind: "disconnected" } });
    const t = await makeApp({ LITEFS_DIR: dir, LITEFS_API_URL: node.url }, data);
    try {
      expect(t.deps.role.state().kind).toBe("undecided");
      const w = await t.request("POST", `/api/v1/users/${id}/posts`, { token, body: { title: "t", content: "c" }, headers: { "x-request-id": "rid-w" } });
      expect(w.status).toBe(503);
      expect(w.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(w.headers.get("content-type")).toBe("application/problem+json");
      expect(w.headers.get("fly-replay")).toBeNull();
      expect(w.headers.get("x-request-id")).toBe("rid-w");
      expect(((await w.json()) as any).status).toBe(503);
      expect((await t.request("POST", "/api/v1/auth/login", { body: { email: "seed@example.com", password: "password-1" } })).status).toBe(503);
      expect((await t.request("GET", `/api/v1/users/${id}`, { token })).status).toBe(200);
      const health = await t.json("GET", "/health/ready");
      expect(health.status).toBe(200);
      expect(health.body.checks.replication).toMatchObject({ role: "replica", primary: null, status: "no_primary" });

      // LiteFS reconnects: writes are replayed to the primary again.
      node.follow("m-ams-1");
      await waitUntil(() => t.deps.role.primaryName() === "m-ams-1", 5_000, "the role to name m-ams-1 as the primary");
      const r = await t.request("POST", `/api/v1/users/${id}/posts`, { token, body: { title: "t", content: "c" } });
      expect(r.status).toBe(409);
      expect(r.headers.get("fly-replay")).toBe("instance=m-ams-1");

      // It is promoted (failover): the file goes and the API says isPrimary.
      node.promote();
      await waitUntil(() => t.deps.role.isPrimary(), 5_000, "the promotion");
      const p = await t.request("POST", `/api/v1/users/${id}/posts`, { token, body: { title: "t", content: "c" } });
      expect(p.status).toBe(201);
    } finally {
      await t.close();
      node.close();
    }
  }, 20_000);

  test("takes no database-writing job until LiteFS says it is the primary", async () => {
    const data = mount();
    const seed = await makeApp({}, data);
    const { id } = await seed.user();
    await seed.close();
    const dir = mount();
    const node = liteFsNode({ dir, hostname: "m-syd-1", state: { kind: "disconnected" } });
    const t = await makeApp({ LITEFS_DIR: dir, LITEFS_API_URL: node.url, CRON_ENABLED: "false" }, data);
    try {
      t.start();
      // No Redis here: the in-process queue, so only this instance could take it.
      const job = await t.deps.queue.enqueue(JOB_TYPES.updatePreferences, { user_id: id, preference_updates: { a: 1 } });
      // A job that writes nothing, enqueued after it, runs anywhere: once it has run, the worker has looked at
      // the queue since the database-writing job arrived, and left that one alone.
      t.deps.queue.register({ type: "test_marker", writesDb: false, handler: async () => {} });
      const marker = await t.deps.queue.enqueue("test_marker", {});
      await waitUntil(async () => (await t.deps.queue.getJob(marker))?.status === "completed", 8_000, "the marker job");
      expect((await t.deps.queue.getJob(job))?.status).toBe("pending");
      node.promote();
      await waitUntil(async () => (await t.deps.queue.getJob(job))?.status === "completed", 8_000, "the job after the promotion");
      expect((await t.deps.queue.getJob(job))?.status).toBe("completed");
    } finally {
      await t.close();
      node.close();
    }
  }, 20_000);
});
