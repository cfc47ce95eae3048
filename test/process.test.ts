// The service as a process: bad configuration refuses to start; SIGTERM drains in-flight requests and exits 0;
// migrations apply to an empty file, alone and at start.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@libsql/client";
import { join } from "node:path";
import { ROOT, tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, rawConnection, spawnService, waitFor, type Spawned } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const spawned: Spawned[] = [];
afterAll(() => {
  for (const s of spawned) s.kill("SIGKILL");
});

async function tables(dbFile: string): Promise<string[]> {
  const c = createClient({ url: `file:${dbFile}` });
  const r = await c.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  c.close();
  return r.rows.map((row) => String(row.name));
}

describe("bad configuration", () => {
  test.each([
    ["PORT", { PORT: "not-a-port" }],
    ["PORT", { PORT: "70000" }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["REDIS_URL", { REDIS_URL: "http://example" }],
    ["HEARTBEAT_INTERVAL", { HEARTBEAT_INTERVAL: "0" }],
    ["JWT_SECRET", { NODE_ENV: "production", JWT_SECRET: undefined }],
  ])("%s: exits 1 with one line naming the variable", async (variable, env) => {
    const dir = tempDir();
    const port = await freePort();
    const s = spawnService({ ...testEnv({ LOG_LEVEL: "info" }, dir), ...env } as Record<string, string>, port);
    spawned.push(s);
    const code = await s.proc.exited;
    expect(code).toBe(1);
    const lines = s.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    // It never started half-configured: nothing listened, no database file was created.
    expect(await Bun.file(join(dir, "app.db")).exists()).toBe(false);
  }, 20_000);
});

describe("graceful shutdown", () => {
  test("SIGTERM lets an in-flight request finish, closes, and exits 0", async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const s = spawnService(
      testEnv({ LOG_LEVEL: "info", SHUTDOWN_TIMEOUT_MS: "5000", METRICS_ENABLED: "true", METRICS_PORT: String(metricsPort) }) as Record<string, string>,
      port,
    );
    spawned.push(s);
    await waitFor(`${s.url}/health/live`);
    const reg = await fetch(`${s.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "drain@example.com", password: "password-1", full_name: "D" }),
    });
    expect(reg.status).toBe(201);
    // Hold a login open deterministically: send its headers and half its body, signal, then send the rest.
    const body = JSON.stringify({ email: "drain@example.com", password: "password-1" });
    const conn = await rawConnection(port);
    conn.write(
      `POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
    );
    // The server counts it in flight (its own gauge, on the metrics port) before the signal...
    const inFlight = async () => /^http_requests_in_flight (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())?.[1];
    await waitUntil(async () => (await inFlight()) === "1", 10_000, "the login to be in flight");
    s.kill("SIGTERM");
    // ...and has begun shutting down before the rest of the body arrives.
    await waitUntil(() => s.stdout().includes('"msg":"shutting down"'), 10_000, "the shutdown to begin");
    conn.write(body.slice(10));
    const response = await conn.response;
    expect(response).toStartWith("HTTP/1.1 200");
    expect(response).toContain("access_token");
    expect(await s.proc.exited).toBe(0);
    const out = s.stdout();
    expect(out).toMatch(/"msg":"shutting down"[^\n]*"in_flight":1/);
    expect(out).toContain('"msg":"stopped"');
    // Stopped listening.
    await expect(fetch(`${s.url}/health/live`)).rejects.toThrow();
  }, 30_000);

  test("SIGINT also exits 0", async () => {
    const port = await freePort();
    const s = spawnService(testEnv() as Record<string, string>, port);
    spawned.push(s);
    await waitFor(`${s.url}/health/live`);
    s.kill("SIGINT");
    expect(await s.proc.exited).toBe(0);
  }, 30_000);
});

describe("migrations", () => {
  test("start on an empty directory creates ./data-style folders, the file and every table", async () => {
    const dir = join(tempDir(), "nested", "data");
    const port = await freePort();
    const s = spawnService(testEnv({}, dir) as Record<string, string>, port);
    spawned.push(s);
    await waitFor(`${s.url}/health/ready`);
    s.kill("SIGTERM");
    await s.proc.exited;
    const names = await tables(join(dir, "app.db"));
    for (const t of ["users", "posts", "preferences", "sessions", "outbox", "instances"]) expect(names).toContain(t);
  }, 30_000);

  test("`bun run db:migrate` applies to an empty file and is idempotent", async () => {
    const dir = tempDir();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: `file:${join(dir, "m.db")}` };
    for (let i = 0; i < 2; i++) {
      const p = Bun.spawn(["bun", "run", "db:migrate"], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
      expect(await p.exited).toBe(0);
    }
    const names = await tables(join(dir, "m.db"));
    expect(names).toContain("users");
    expect(names).toContain("__drizzle_migrations");
    const c = createClient({ url: `file:${join(dir, "m.db")}` });
    expect((await c.execute("PRAGMA journal_mode")).rows[0]![0]).toBe("wal");
    c.close();
  }, 30_000);

  test("`bun run db:migrate` on a LiteFS replica (.primary present) skips and creates nothing", async () => {
    const dir = tempDir();
    const litefs = tempDir();
    await Bun.write(join(litefs, ".primary"), "primary-host\n");
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: `file:${join(dir, "r.db")}`, LITEFS_DIR: litefs };
    const p = Bun.spawn(["bun", "run", "db:migrate"], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(0);
    expect(await new Response(p.stdout).text()).toContain("migrations skipped");
    expect(await Bun.file(join(dir, "r.db")).exists()).toBe(false);
  }, 30_000);
});

describe("body limit on a real listener", () => {
  test("70 KB with Content-Length and 2 MB chunked are 413 problem+json with x-request-id", async () => {
    const port = await freePort();
    const s = spawnService(testEnv() as Record<string, string>, port);
    spawned.push(s);
    await waitFor(`${s.url}/health/live`);
    const big = JSON.stringify({ email: "a@example.com", password: "x".repeat(70_000) });
    const r1 = await fetch(`${s.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "big-1" },
      body: big,
    });
    expect(r1.status).toBe(413);
    expect(r1.headers.get("content-type")).toBe("application/problem+json");
    expect(r1.headers.get("x-request-id")).toBe("big-1");
    expect((await r1.json()).status).toBe(413);

    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 32) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const r2 = await fetch(`${s.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "big-2" },
      body: stream,
      // @ts-expect-error Bun/undici option for streaming request bodies
      duplex: "half",
    });
    expect(r2.status).toBe(413);
    expect(r2.headers.get("content-type")).toBe("application/problem+json");
    expect(r2.headers.get("x-request-id")).toBe("big-2");
    // Still serving.
    expect((await fetch(`${s.url}/health/live`)).status).toBe(200);
    s.kill("SIGTERM");
    expect(await s.proc.exited).toBe(0);
  }, 30_000);
});

describe("short Host headers", () => {
  test("a Host of one to three characters still reaches the routes", async () => {
    const port = await freePort();
    const s = spawnService(testEnv() as Record<string, string>, port);
    spawned.push(s);
    await waitFor(`${s.url}/health/live`);
    for (const host of ["a", "ab", "api", "app1"]) {
      const conn = await rawConnection(port);
      conn.write(`GET /health/live HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      const response = await conn.response;
      expect(response, `Host: ${host}`).toStartWith("HTTP/1.1 200");
    }
    s.kill("SIGTERM");
    await s.proc.exited;
  }, 30_000);
});

describe("log lines at exit", () => {
  test("process.exit right after logging drops no line, even when the reader of stdout is slow", async () => {
    const script = `
      import { createLogger } from ${JSON.stringify(join(ROOT, "src/platform/observability/logger.ts"))};
      const log = createLogger("info", { instance: "exit-test" });
      for (let i = 0; i < 2000; i++) log.info("line", { i, pad: "x".repeat(200) });
      await Bun.sleep(15);
      for (let i = 2000; i < 2100; i++) log.info("line", { i });
      process.exit(0);
    `;
    const proc = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "inherit" });
    const reader = proc.stdout.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      await Bun.sleep(20); // a slow log shipper
    }
    expect(await proc.exited).toBe(0);
    const seen = text.split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(seen).toEqual(Array.from({ length: 2100 }, (_, i) => i));
  }, 20_000);
});
