// A start that fails part-way (a migration refused, the port taken, with or without a reachable Redis) closes
// what it had opened, says which part failed, and leaves the process free to end: nothing it opened (database
// file, Redis connection, timers) outlives the failure. `bun run start` says so on stderr whatever LOG_LEVEL is.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { REDIS_URL, tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, spawnBun, spawnService, type Spawned } from "./support/process.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

/** Generous: a process that still holds a Redis connection or a timer never ends at all. */
const EXIT_WITHIN_MS = 20_000;

const spawned: Spawned[] = [];
const held: ReturnType<typeof Bun.serve>[] = [];
afterAll(async () => {
  for (const s of spawned) s.kill("SIGKILL");
  for (const s of held) await s.stop(true);
});

/** A port something else already listens on. */
function takenPort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("someone else") });
  held.push(s);
  return s.port!;
}

/** Exit code, or null if the process was still running after EXIT_WITHIN_MS. */
async function exitCode(s: Spawned): Promise<number | null> {
  return Promise.race([s.finished(), Bun.sleep(EXIT_WITHIN_MS).then(() => null)]);
}

/** Runs the fixture that starts one instance and, on failure, only reports (test/fixtures/start-fails.ts). */
async function failedStart(env: Record<string, string | undefined>): Promise<{ error: string; name: string; databaseFilesOpen: number }> {
  const s = spawnBun(["test/fixtures/start-fails.ts"], { ...testEnv({ HOST: "127.0.0.1" }), ...env });
  spawned.push(s);
  const code = await exitCode(s);
  const line = s.stdout().trim().split("\n").at(-1) ?? "";
  expect({ code, line }).toMatchObject({ code: 0 });
  return JSON.parse(line);
}

describe("a start that fails part-way", () => {
  test("a refused migration: the database file is closed, the Redis connection too, and the error names the migrations", async () => {
    const dir = tempDir();
    // Another application's database: its `users` table is not ours, so the first migration cannot create it.
    const foreign = new Database(join(dir, "app.db"));
    foreign.run("CREATE TABLE users (name TEXT)");
    foreign.close();
    const report = await failedStart({ DATABASE_URL: `file:${join(dir, "app.db")}`, REDIS_URL, PORT: String(await freePort()) });
    expect(report.name).toBe("StartError");
    expect(report.error).toContain("database migrations failed");
    expect(report.error).toContain("table `users` already exists");
    expect(report.databaseFilesOpen).toBe(0);
  });

  for (const redis of ["reachable", "unreachable"] as const) {
    test(`the port already taken (Redis ${redis}): everything opened before the listener is closed, and the error names the port`, async () => {
      const port = takenPort();
      const redisUrl = redis === "reachable" ? REDIS_URL : `redis://127.0.0.1:${await freePort()}`;
      const report = await failedStart({ REDIS_URL: redisUrl, PORT: String(port) });
      expect(report.name).toBe("StartError");
      expect(report.error).toContain(`HTTP listener on 127.0.0.1:${port} failed`);
      expect(report.databaseFilesOpen).toBe(0);
    });
  }

  // Like a bad configuration, a failed start is one plain line on stderr at every LOG_LEVEL: with `silent` it
  // is the only thing that says why the process ended.
  for (const level of ["info", "silent"] as const) {
    test(`bun run start on a taken port (LOG_LEVEL=${level}) exits 1 promptly with one stderr line naming the port`, async () => {
      const port = takenPort();
      const s = spawnService(testEnv({ LOG_LEVEL: level, REDIS_URL }), port);
      spawned.push(s);
      expect(await exitCode(s)).toBe(1);
      const lines = s.stderr().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith(`start failed: HTTP listener on 127.0.0.1:${port} failed:`);
      if (level === "silent") expect(s.stdout()).toBe("");
    });
  }

  test("bun run start with METRICS_PORT taken exits 1 naming the metrics listener, never having said it listens", async () => {
    const metricsPort = takenPort();
    const port = await freePort();
    const s = spawnService(testEnv({ LOG_LEVEL: "info", METRICS_ENABLED: "true", METRICS_PORT: String(metricsPort) }), port);
    spawned.push(s);
    expect(await exitCode(s)).toBe(1);
    expect(s.stderr().trim()).toStartWith(`start failed: metrics listener on 127.0.0.1:${metricsPort} failed:`);
    const said = s.stdout().trim().split("\n").filter(Boolean).map((l) => JSON.parse(l).msg);
    expect(said).not.toContain("listening");
  });

  test("bun run start with LOG_LEVEL=silent and a refused migration: one stderr line with the part and the reason", async () => {
    const dir = tempDir();
    const foreign = new Database(join(dir, "app.db"));
    foreign.run("CREATE TABLE users (name TEXT)");
    foreign.close();
    const s = spawnService(testEnv({ LOG_LEVEL: "silent" }, dir), await freePort());
    spawned.push(s);
    expect(await exitCode(s)).toBe(1);
    const lines = s.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith("start failed: database migrations failed:");
    // The statement drizzle quotes spans many lines; the line ends with SQLite's own reason.
    expect(lines[0]).toEndWith("table `users` already exists");
    expect(s.stdout()).toBe("");
  });

  test("bun run cluster with LOG_LEVEL=silent on a taken port: the instance's line and the runner's, on stderr, exit 1", async () => {
    const port = takenPort();
    const s = spawnService(testEnv({ LOG_LEVEL: "silent", REDIS_URL }), port, { args: ["cluster", "--", "--instances", "2"] });
    spawned.push(s);
    expect(await exitCode(s)).toBe(1);
    const err = s.stderr();
    expect(err).toContain(`start failed: HTTP listener on 127.0.0.1:${port} failed:`);
    expect(err).toMatch(/cluster start failed: instance \S+ exited during start \(code 1\); stopping the instances/);
    expect(s.stdout()).toBe("");
  });
});
