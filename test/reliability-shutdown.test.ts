// SIGTERM under load: an instance of a 3-instance `bun run cluster` stops while a bounded load generator keeps
// reads and writes going on keep-alive connections; every request gets an answer (no connection error, no
// 5xx), the runner keeps going, and exits 0 once every instance stopped cleanly.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, spawnService, type Spawned } from "./support/process.ts";
import { pidsOfInstance, runLoad } from "./support/load.ts";
import { startPrivateRedis, type PrivateRedis } from "./support/redis-server.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let cluster: Spawned | undefined;
let redis: PrivateRedis | undefined;
afterAll(async () => {
  // SIGTERM first: the runner's children are detached, and only the runner stops them.
  await cluster?.stop(10_000);
  await redis?.stop();
}, 30_000);

test("one instance of three stopped with SIGTERM under load: every request answered; the runner exits 0", async () => {
  redis = await startPrivateRedis();
  const dir = tempDir("drain-");
  const port = await freePort();
  const base = `drain-${crypto.randomUUID().slice(0, 6)}`;
  const env = testEnv(
    {
      REDIS_URL: redis.url,
      INSTANCE_ID: base,
      CRON_ENABLED: "false",
      RATE_LIMIT_READ_PER_MINUTE: "0",
      RATE_LIMIT_WRITE_PER_MINUTE: "0",
      LOG_LEVEL: "info",
    },
    dir,
  );
  const c = (cluster = spawnService(env, port, { args: ["cluster", "--", "--instances", "3"] }));
  await c.waitForOutput('"msg":"cluster up"', 60_000);
  const url = c.url;
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
  let answered = 0;
  const load = runLoad({
    workers: 32,
    durationMs: 5_000,
    check: async (res) => {
      answered++;
      await res.arrayBuffer();
    },
    request: (w, i) =>
      w % 4 === 0
        ? new Request(`${url}/api/v1/users/${id}/preferences`, {
            method: "PATCH",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({ [`w${w}`]: i }),
          })
        : new Request(`${url}/api/v1/users/${id}`, { headers: auth }),
  });
  // The stop lands while the load runs: answers came before it, and more come after it.
  await waitUntil(() => answered >= 64, 4_000, "the load to be under way");
  process.kill(pid!, "SIGTERM");
  const answeredAtStop = answered;
  const result = await load;
  expect(answered).toBeGreaterThan(answeredAtStop);
  expect(result.errors).toEqual([]);
  expect(result.connectionErrors).toBe(0);
  expect(result.status5xx).toBe(0);
  expect(result.requests).toBeGreaterThan(100);
  expect(c.stdout()).toContain(`"msg":"stopped","instance":"${base}-2"`);
  expect(c.stdout()).not.toContain("instance exited unexpectedly");

  c.kill("SIGTERM");
  expect(await c.finished()).toBe(0);
  expect(c.stdout()).not.toContain("instance exited unexpectedly");
}, 90_000);
