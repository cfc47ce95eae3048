// A hung Redis (a private redis-server under SIGSTOP: its socket accepts, nothing answers) costs a request at
// most the per-command deadline: login, reads and writes answer while it hangs, and every client command has
// a deadline (node-redis's own option stops counting once a command is written).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createLogger } from "../src/platform/observability/logger.ts";
import { openRedis, RedisCommandTimeout } from "../src/platform/redis.ts";
import { makeApp, type TestApp, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: PrivateRedis;
const apps: TestApp[] = [];

beforeAll(async () => {
  redis = await startPrivateRedis();
});
afterAll(async () => {
  redis.resume();
  await Promise.all(apps.map((a) => a.close()));
  await redis.stop();
});

/** The response, or "hung" when none came within `ms`. */
async function within(ms: number, p: Promise<Response>): Promise<Response | "hung"> {
  return Promise.race([p, Bun.sleep(ms).then(() => "hung" as const)]);
}

describe("Redis paused (SIGSTOP)", () => {
  test("every command of the client, a duplicate's and MULTI's, fails with a timeout instead of hanging", async () => {
    const client = await openRedis(redis.url, createLogger("silent"), { commandTimeoutMs: 200 });
    const dup = client.duplicate();
    dup.on("error", () => undefined);
    await dup.connect();
    try {
      expect(await client.set("k", "v")).toBe("OK");
      redis.pause();
      const calls = [
        client.get("k"),
        client.sendCommand(["PING"]),
        client.hGet("h", "f"),
        dup.get("k"),
        client.multi().set("a", "1").get("a").exec(),
        // A blocking read's deadline starts after its block time.
        dup.sendCommand(["XREAD", "BLOCK", "300", "STREAMS", "s", "$"]),
      ];
      const settled = await Promise.race([Promise.allSettled(calls), Bun.sleep(5_000).then(() => null)]);
      expect(settled).not.toBeNull();
      for (const r of settled!) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(RedisCommandTimeout);
      }
    } finally {
      redis.resume();
      dup.destroy();
      client.destroy();
    }
  }, 20_000);

  test("login, a cached read and a write answer while Redis hangs; afterwards all is as before", async () => {
    const a = await makeApp({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: "300", CRON_ENABLED: "false" });
    apps.push(a);
    a.start();
    const u = await a.user("hang@example.com", "correct-horse");
    expect((await a.json("GET", `/api/v1/users/${u.id}`, { token: u.token })).status).toBe(200);
    redis.pause();
    try {
      const login = await within(
        5_000,
        a.request("POST", "/api/v1/auth/login", { body: { email: "hang@example.com", password: "correct-horse" } }),
      );
      expect(login).not.toBe("hung");
      expect((login as Response).status).toBe(200);
      const read = await within(5_000, a.request("GET", `/api/v1/users/${u.id}`, { token: u.token }));
      expect(read).not.toBe("hung");
      expect((read as Response).status).toBe(200);
      const write = await within(5_000, a.request("PATCH", `/api/v1/users/${u.id}/preferences`, { token: u.token, body: { theme: "dark" } }));
      expect(write).not.toBe("hung");
      expect((write as Response).status).toBe(200);
    } finally {
      redis.resume();
    }
    const after = await a.json("GET", `/api/v1/users/${u.id}/preferences`, { token: u.token });
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ theme: "dark" });
  }, 30_000);
});

describe("coherence through a Redis pause", () => {
  test("another instance stops serving its L1 copy within the bus deadline, and serves nothing stale after the resume", async () => {
    const dir = (await import("./helpers.ts")).tempDir("hang-");
    const prefix = testPrefix("hang");
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, REDIS_COMMAND_TIMEOUT_MS: "300", CRON_ENABLED: "false" };
    const a = await makeApp(env, dir);
    const b = await makeApp(env, dir);
    apps.push(a, b);
    a.start();
    b.start();
    const u = await a.user("coherent@example.com", "correct-horse");
    const read = async () => (await b.json("GET", `/api/v1/users/${u.id}`, { token: u.token })).body.user.full_name as string;
    expect(await read()).toBe("Test User");
    const cached = await b.request("GET", `/api/v1/users/${u.id}`, { token: u.token });
    expect(cached.headers.get("x-cache")).toBe("hit-l1");

    redis.pause();
    let wroteAt = 0;
    let lastStaleAt = 0;
    try {
      await Bun.sleep(100);
      wroteAt = performance.now();
      const w = await within(5_000, a.request("PATCH", `/api/v1/users/${u.id}`, { token: u.token, body: { full_name: "Changed" } }));
      expect(w).not.toBe("hung");
      expect((w as Response).status).toBe(200);
      const until = performance.now() + 2_500;
      while (performance.now() < until) {
        if ((await read()) !== "Changed") lastStaleAt = performance.now();
        await Bun.sleep(25);
      }
    } finally {
      redis.resume();
    }
    // Stale reads stopped within the deadline (750 ms) plus a heartbeat; generous here for a loaded machine.
    expect(lastStaleAt === 0 ? 0 : lastStaleAt - wroteAt).toBeLessThan(2_000);
    const until = performance.now() + 3_000;
    let staleAfter = 0;
    while (performance.now() < until) {
      if ((await read()) !== "Changed") staleAfter++;
      await Bun.sleep(25);
    }
    expect(staleAfter).toBe(0);
  }, 40_000);
});
