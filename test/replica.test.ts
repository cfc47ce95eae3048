// A local primary and a LiteFS-style replica as two processes sharing one SQLite file. The replica is told it
// is one the way LiteFS says it: a `.primary` file in LITEFS_DIR naming the primary.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@libsql/client";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, spawnService, waitFor, type Spawned } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const TOKEN = "replica-test-internal-token";
const PRIMARY_NAME = "primary-machine-1";
const spawned: Spawned[] = [];
afterAll(() => {
  for (const s of spawned) s.kill("SIGKILL");
});

function start(env: Record<string, string | undefined>, port: number): Spawned {
  const s = spawnService(env, port);
  spawned.push(s);
  return s;
}

function logLines(s: Spawned): Record<string, any>[] {
  return s
    .stdout()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

/** Polls as the service's own beat would be seen: every 100 ms, for up to 20 s. */
const until = <T>(what: string, fn: () => Promise<T> | T) => waitUntil(fn, { timeoutMs: 20_000, intervalMs: 100 }, what);

async function query(file: string, sql: string) {
  const c = createClient({ url: `file:${file}` });
  try {
    return (await c.execute(sql)).rows;
  } finally {
    c.close();
  }
}

describe("primary and replica sharing one SQLite file", () => {
  const dir = tempDir("pair-");
  const dbFile = join(dir, "app.db");
  const litefs = tempDir("litefs-");
  writeFileSync(join(litefs, ".primary"), `${PRIMARY_NAME}\n`);
  let pPort: number;
  let primary: Spawned;
  let replica: Spawned;
  let pInternal: number;
  const primaryEnv = () => testEnv({ LOG_LEVEL: "info", INTERNAL_TOKEN: TOKEN, INSTANCE_ID: "p1", HEARTBEAT_INTERVAL: "1", INTERNAL_PORT: String(pInternal) }, dir);

  beforeAll(async () => {
    pPort = await freePort();
    pInternal = await freePort();
    primary = start(primaryEnv(), pPort);
    await waitFor(`${primary.url}/health/ready`);
    const rPort = await freePort();
    replica = start(
      testEnv(
        {
          LOG_LEVEL: "info",
          INTERNAL_TOKEN: TOKEN,
          INSTANCE_ID: "r1",
          FLY_REGION: "lhr",
          HEARTBEAT_INTERVAL: "1",
          LITEFS_DIR: litefs,
          PRIMARY_URL: `http://127.0.0.1:${pInternal}`,
        },
        dir,
      ),
      rPort,
    );
    await waitFor(`${replica.url}/health/ready`);
  }, 40_000);

  test("a POST to the replica answers 409 with fly-replay: instance=<primary>", async () => {
    const r = await fetch(`${replica.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "w@example.com", password: "password-1", full_name: "W" }),
    });
    expect(r.status).toBe(409);
    expect(r.headers.get("fly-replay")).toBe(`instance=${PRIMARY_NAME}`);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    // Nothing was written: the same request on the primary creates the account.
    expect(await query(dbFile, "SELECT id FROM users WHERE email = 'w@example.com'")).toHaveLength(0);
    const p = await fetch(`${primary.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "w@example.com", password: "password-1", full_name: "W" }),
    });
    expect(p.status).toBe(201);
    // ...and the replica reads it from the shared file.
    const login = await fetch(`${replica.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "w@example.com", password: "password-1" }),
    });
    // A login is a POST: the replica sends it to the primary as well.
    expect(login.status).toBe(409);
  });

  test("the replica's heartbeats reach the table through the primary's /internal route", async () => {
    const row = await until("the replica's row", async () => {
      const rows = await query(dbFile, "SELECT * FROM instances WHERE id = 'r1'");
      return rows[0];
    });
    expect(row).toMatchObject({ id: "r1", role: "replica", region: "lhr" });
    // Each beat carries the replica's own lag (the age of the newest heartbeat in its copy, here the same file).
    const lag = await until("the replica's lag in its row", async () => {
      const [r] = await query(dbFile, "SELECT replica_lag_seconds FROM instances WHERE id = 'r1'");
      return typeof r?.replica_lag_seconds === "number" ? r.replica_lag_seconds : undefined;
    });
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(10);
    // The primary served the writes (its request log), the replica made the calls (its heartbeat log).
    const relayed = await until("relayed beats", () => {
      const n = logLines(primary).filter((l) => l.msg === "request" && l.method === "PUT" && l.route === "/internal/instances/:id" && l.status === 204).length;
      return n >= 2 ? n : undefined;
    });
    expect(relayed).toBeGreaterThanOrEqual(2);
    expect(logLines(replica).some((l) => l.msg === "heartbeat failed; will retry")).toBe(false);
    expect(replica.stdout()).not.toContain(TOKEN);
  });

  test("the replica ran no migration", () => {
    const lines = logLines(replica);
    expect(lines.some((l) => l.msg === "replica: migrations left to the primary" && l.primary === PRIMARY_NAME)).toBe(true);
    expect(lines.some((l) => l.msg === "migrations applied")).toBe(false);
    expect(logLines(primary).some((l) => l.msg === "migrations applied")).toBe(true);
  });

  test("stopping the primary: the replica logs, retries and keeps serving; it recovers when the primary is back", async () => {
    primary.kill("SIGTERM");
    expect(await primary.proc.exited).toBe(0);

    const failures = await until("three failed beats", () => {
      const f = logLines(replica).filter((l) => l.msg === "heartbeat failed; will retry");
      return f.length >= 3 ? f : undefined;
    });
    expect(failures.slice(0, 3).map((l) => l.attempt)).toEqual([1, 2, 3]);
    expect(replica.proc.exitCode).toBeNull();
    expect((await fetch(`${replica.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${replica.url}/health/ready`)).status).toBe(200);

    // The primary comes back on the same address: the next retry gets through.
    const restartedAt = new Date().toISOString();
    primary = start(primaryEnv(), pPort);
    await waitFor(`${primary.url}/health/ready`);
    await until("the heartbeat to recover", () => (logLines(replica).some((l) => l.msg === "heartbeat recovered") ? true : undefined));
    const row = await until("a fresh beat", async () => {
      const rows = await query(dbFile, "SELECT last_heartbeat FROM instances WHERE id = 'r1'");
      return rows[0] && String(rows[0].last_heartbeat) > restartedAt ? rows[0] : undefined;
    });
    expect(row).toBeDefined();
    expect(replica.proc.exitCode).toBeNull();
  }, 40_000);
});

test("a replica started on an empty file creates no table at all", async () => {
  const dir = tempDir("empty-replica-");
  const litefs = tempDir("litefs-");
  writeFileSync(join(litefs, ".primary"), "somewhere\n");
  const port = await freePort();
  const r = start(testEnv({ LOG_LEVEL: "info", LITEFS_DIR: litefs, INTERNAL_TOKEN: TOKEN, PRIMARY_URL: "http://127.0.0.1:9", HEARTBEAT_INTERVAL: "1" }, dir), port);
  await waitFor(`${r.url}/health/live`);
  // Up and beating (its heartbeat to the absent primary fails, as it should), with cron and workers started.
  await until("a heartbeat attempt", () => (logLines(r).some((l) => l.msg === "heartbeat failed; will retry") ? true : undefined));
  const tables = async () => (await query(join(dir, "app.db"), "SELECT name FROM sqlite_master WHERE type = 'table'")).map((t) => t.name);
  expect(await tables()).toEqual([]);
  r.kill("SIGTERM");
  await r.proc.exited;
  expect(await tables()).toEqual([]);
}, 30_000);
