// `bun run cluster -- --instances 3`: three processes on one port, one SQLite file, one Redis; /cluster/stats
// shows three healthy instances; each has its own /metrics port; SIGTERM stops them all and they deregister.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@libsql/client";
import { join } from "node:path";
import { REDIS_URL, tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { freePort, freePortRange, spawnService, type Spawned } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let cluster: Spawned | undefined;
// SIGTERM first: the runner's children are detached, and only the runner stops them.
afterAll(() => cluster?.stop(10_000), 20_000);

/** Asks the cluster until it answers as wanted (a refused or odd answer while it starts is asked again). */
const until = <T>(what: string, fn: () => Promise<T>) => waitUntil(fn, { timeoutMs: 30_000, intervalMs: 100, retryErrors: true }, what);

test("bun run cluster -- --instances 3: three healthy instances in /cluster/stats, stopped together", async () => {
  const dir = tempDir("cluster-");
  const port = await freePort();
  const metricsBase = await freePortRange(3);
  const base = `clitest-${crypto.randomUUID().slice(0, 6)}`;
  const ids = [1, 2, 3].map((i) => `${base}-${i}`);
  const env = testEnv(
    {
      REDIS_URL,
      ADMIN_EMAIL: "admin@example.com",
      ADMIN_PASSWORD: "admin-password-1",
      INSTANCE_ID: base,
      HEARTBEAT_INTERVAL: "1",
      METRICS_ENABLED: "true",
      METRICS_PORT: String(metricsBase),
      LOG_LEVEL: "info",
    },
    dir,
  );
  const c = (cluster = spawnService(env, port, { args: ["cluster", "--", "--instances", "3"] }));
  await c.waitForOutput('"msg":"cluster up"', 30_000);

  const url = c.url;
  const login = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@example.com", password: "admin-password-1" }),
  });
  expect(login.status).toBe(200);
  const { access_token } = (await login.json()) as { access_token: string };

  const stats = await until("three healthy instances", async () => {
    const r = await fetch(`${url}/cluster/stats`, { headers: { authorization: `Bearer ${access_token}` } });
    const body = (await r.json()) as any;
    return body.healthy_instances === 3 ? body : undefined;
  });
  expect(stats.total_instances).toBe(3);
  expect(stats.instances.map((i: any) => i.id).sort()).toEqual(ids);
  expect(stats.instances.every((i: any) => i.healthy && i.port === port && i.role === "primary")).toBe(true);
  expect(ids).toContain(stats.least_loaded_instance);
  // They keep beating: every row is refreshed after start.
  const refreshed = await until("a second round of beats", async () => {
    const r = await fetch(`${url}/cluster/stats`, { headers: { authorization: `Bearer ${access_token}` } });
    const body = (await r.json()) as any;
    return body.instances.every((i: any) => i.last_heartbeat > i.started_at) ? body : undefined;
  });
  expect(refreshed.healthy_instances).toBe(3);

  // Three processes, each with its own /metrics port (base + i).
  for (let i = 0; i < 3; i++) {
    const text = await (await fetch(`http://127.0.0.1:${metricsBase + i}/metrics`)).text();
    expect(text).toContain(`instance_info{instance="${ids[i]}"`);
  }

  c.kill("SIGTERM");
  expect(await c.finished()).toBe(0);
  for (const id of ids) expect(c.stdout()).toContain(`"msg":"stopped","instance":"${id}"`);
  for (let i = 0; i < 3; i++) {
    const gone = await fetch(`http://127.0.0.1:${metricsBase + i}/metrics`).then(() => false, () => true);
    expect(gone).toBe(true);
  }
  // Graceful: each one deregistered.
  const db = createClient({ url: `file:${join(dir, "app.db")}` });
  const left = await db.execute("SELECT COUNT(*) AS n FROM instances");
  db.close();
  expect(Number(left.rows[0]!.n)).toBe(0);
}, 60_000);
