// SIGTERM under load: an instance of a 3-instance `bun run cluster` stops while a bounded load generator keeps
// reads and writes going on keep-alive connections; every request gets an answer (no connection error, no
// 5xx), the runner keeps going, and exits 0 once every instance stopped cleanly.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT, tempDir } from "./helpers.ts";
import { collectOutput, freePort } from "./support/process.ts";
import { pidsOfInstance, runLoad } from "./support/load.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";

let proc: ReturnType<typeof Bun.spawn> | undefined;
let redis: PrivateRedis | undefined;
afterAll(async () => {
  proc?.kill("SIGKILL");
  await redis?.stop();
});

test("one instance of three stopped with SIGTERM under load: every request answered; the runner exits 0", async () => {
  redis = await startPrivateRedis();
  const dir = tempDir("drain-");
  const port = await freePort();
  const base = `drain-${crypto.randomUUID().slice(0, 6)}`;
  proc = Bun.spawn(["bun", "run", "cluster", "--", "--instances", "3"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "test",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: `file:${join(dir, "app.db")}`,
      REDIS_URL: redis.url,
      JWT_SECRET: "drain-test-secret-drain-test-secret-0000",
      INSTANCE_ID: base,
      METRICS_ENABLED: "false",
      CRON_ENABLED: "false",
      RATE_LIMIT_READ_PER_MINUTE: "0",
      RATE_LIMIT_WRITE_PER_MINUTE: "0",
      LOG_LEVEL: "info",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = collectOutput(proc);
  const deadline = Date.now() + 60_000;
  while (!output.stdout().includes('"msg":"cluster up"')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`cluster did not start: ${output.stdout()}${output.stderr()}`);
    await Bun.sleep(100);
  }
  const url = `http://127.0.0.1:${port}`;
  const reg = await fetch(`${url}/api/v1/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "drain@example.com", password: "correct-horse", full_name: "Drain" }),
  });
  expect(reg.status).toBe(201);
  const { id } = (await reg.json()) as { id: number };
  const login = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "drain@example.com", password: "correct-horse" }),
  });
  const { access_token } = (await login.json()) as { access_token: string };
  const auth = { authorization: `Bearer ${access_token}` };

  const [pid] = await pidsOfInstance(`${base}-2`);
  expect(pid).toBeGreaterThan(0);
  const load = runLoad({
    workers: 32,
    durationMs: 5_000,
    request: (w, i) =>
      w % 4 === 0
        ? new Request(`${url}/api/v1/users/${id}/preferences`, {
            method: "PATCH",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({ [`w${w}`]: i }),
          })
        : new Request(`${url}/api/v1/users/${id}`, { headers: auth }),
  });
  await Bun.sleep(1_500);
  process.kill(pid!, "SIGTERM");
  const result = await load;
  expect(result.errors).toEqual([]);
  expect(result.connectionErrors).toBe(0);
  expect(result.status5xx).toBe(0);
  expect(result.requests).toBeGreaterThan(100);
  expect(output.stdout()).toContain(`"msg":"stopped","instance":"${base}-2"`);
  expect(output.stdout()).not.toContain("instance exited unexpectedly");

  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
}, 90_000);
