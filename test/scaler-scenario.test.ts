// The scaler on real instances, bounded: a primary (ams) that runs the scaler in mode "on" against the Machines
// API stand-in, a replica in syd, and two stopped syd machines the stand-in starts as real processes. A load
// step on the syd replica makes it scale up within two intervals; once idle it scales down one machine per
// cooldown; during a Machines API outage nothing changes and the failure is recorded. Heartbeats are real.
// "Within two intervals" is counted in scaler runs (the primary's cron_runs_total) from the moment the load shows
// in the heartbeat table: the load is the replica's CPU, and on a machine loaded by other work the replica gets
// too little CPU to show it for a while (measured: 14 s, three runs, beside six busy loops); that delay is the
// machine's, not the scaler's. The load comes from a process of its own, so the test process (which also plays
// the Machines API) stays responsive.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createClient } from "@libsql/client";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REDIS_URL, tempDir, testEnv, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startMachinesStandin, type MachinesStandin } from "./support/machines-standin.ts";
import { freePort, spawnService, waitFor, type Spawned } from "./support/process.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const TOKEN = "scaler-scenario-internal-token";
const INTERVAL = 5;
const DOWN_COOLDOWN = 6;

async function rows(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = createClient({ url: `file:${file}` });
  try {
    return (await c.execute(sql)).rows as unknown as Record<string, unknown>[];
  } finally {
    c.close();
  }
}

describe("the scaler on real instances", () => {
  const dir = tempDir("scaler-");
  const dbFile = join(dir, "app.db");
  const litefs = tempDir("scaler-litefs-");
  writeFileSync(join(litefs, ".primary"), "p1\n");
  const prefix = testPrefix("scaler");
  const procs = new Map<string, Spawned>();
  let api: MachinesStandin;
  let pInternal = 0;
  let pMetrics = 0;
  let load: ReturnType<typeof Bun.spawn> | undefined;

  const common = { REDIS_URL, REDIS_PREFIX: prefix, INTERNAL_TOKEN: TOKEN, HEARTBEAT_INTERVAL: "1", PRIMARY_REGION: "ams", LOG_LEVEL: "info" };

  async function startReplica(id: string): Promise<void> {
    const port = await freePort();
    const env = testEnv({ ...common, INSTANCE_ID: id, FLY_REGION: "syd", LITEFS_DIR: litefs, PRIMARY_URL: `http://127.0.0.1:${pInternal}`, JOBS_WORKER_ENABLED: "false", INTERNAL_PORT: String(await freePort()) }, dir);
    const s = spawnService(env, port);
    procs.set(id, s);
    await waitFor(`${s.url}/health/live`, 30_000);
  }

  beforeAll(async () => {
    api = startMachinesStandin(
      "edge-app",
      [
        { id: "p1", region: "ams", state: "started" },
        { id: "a2", region: "ams", state: "started" },
        { id: "s1", region: "syd", state: "started" },
        { id: "s2", region: "syd", state: "stopped" },
        { id: "s3", region: "syd", state: "stopped" },
      ],
      {
        // A started machine is a real instance; a stopped one is stopped for real (SIGTERM, graceful).
        onStart: (m) => void startReplica(m.id),
        onStop: (m) => procs.get(m.id)?.kill("SIGTERM"),
      },
    );
    pInternal = await freePort();
    pMetrics = await freePort();
    const p1 = spawnService(
      testEnv(
        {
          ...common,
          INSTANCE_ID: "p1",
          FLY_REGION: "ams",
          INTERNAL_PORT: String(pInternal),
          METRICS_ENABLED: "true",
          METRICS_PORT: String(pMetrics),
          SCALER_MODE: "on",
          SCALER_INTERVAL: String(INTERVAL),
          SCALER_MIN: "ams=2,syd=1",
          // ams pinned at its two lease candidates: on a machine shared with other work the primary's own CPU
          // can pass this low target, and this scenario is about syd.
          SCALER_MAX: "ams=2,syd=3",
          // Load is CPU here (the replica's in-flight count is near zero between requests this short).
          SCALER_TARGET_PERCENT: "10",
          SCALER_CAPACITY: "1000",
          SCALER_UP_COOLDOWN: "0",
          SCALER_DOWN_COOLDOWN: String(DOWN_COOLDOWN),
          FLY_API_URL: api.url,
          FLY_API_TOKEN: api.token,
          FLY_APP_NAME: api.app,
          BREAKER_FLY_MACHINES: "2/3",
        },
        dir,
      ),
      await freePort(),
    );
    procs.set("p1", p1);
    await waitFor(`${p1.url}/health/ready`, 30_000);
    await startReplica("s1");
  }, 60_000);

  afterAll(async () => {
    load?.kill("SIGKILL");
    await api?.close();
    for (const p of procs.values()) p.kill("SIGKILL");
  });

  const running = (region: string) => [...api.machines.values()].filter((m) => m.region === region && m.state === "started").map((m) => m.id).sort();

  test("a load step scales syd up within two intervals; idle scales it down one machine per cooldown; never the primary", async () => {
    const s1 = procs.get("s1")!;
    // Scaler runs the primary has finished (any status).
    const scalerRuns = async () => {
      const text = await (await fetch(`http://127.0.0.1:${pMetrics}/metrics`)).text();
      return [...text.matchAll(/^cron_runs_total\{schedule="scaler",status="[a-z]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const runsBefore = await scalerRuns();
    // When the load first shows in the heartbeat table (the scaler's only input), and the scaler runs by then.
    // How soon a beat shows it depends on the CPU the machine has to spare; what follows is the scaler's part.
    let visible: { at: number; runs: number } | undefined;
    let watching = true;
    const watcher = (async () => {
      while (watching && !visible) {
        const [row] = await rows(dbFile, "SELECT in_flight, cpu_percent FROM instances WHERE id = 's1'");
        if (row && Math.max((Number(row.in_flight) / 1000) * 100, Number(row.cpu_percent)) > 10) visible = { at: Date.now(), runs: await scalerRuns() };
        else await Bun.sleep(100);
      }
    })();
    const loadStart = Date.now();
    load = Bun.spawn(["bun", "-e", `
      const url = ${JSON.stringify(`${s1.url}/api/v1/users/1`)};
      const one = () => fetch(url, { headers: { authorization: "Bearer not-a-token" } }).then((r) => r.arrayBuffer()).catch(() => undefined);
      for (let i = 0; i < 24; i++) (async () => { for (;;) await one(); })();
    `], { stdout: "ignore", stderr: "inherit" });
    // A generous bound in seconds (a loaded machine stretches everything); the claim itself is in runs, below.
    await waitUntil(() => running("syd").length > 1, { timeoutMs: 60_000, intervalMs: 200 }, "syd to scale up");
    const upAt = Date.now();
    const upAfter = (upAt - loadStart) / 1000;
    watching = false;
    await watcher;
    // The run that started the machines finishes right after: wait for its record and its count.
    const upRow = await waitUntil(async () => {
      const r = await rows(dbFile, "SELECT id FROM scaler_decisions WHERE region = 'syd' AND action = 'up' AND outcome = 'ok' LIMIT 1");
      return r[0];
    }, { timeoutMs: 10_000, intervalMs: 100 }, "the up decision recorded");
    await Bun.sleep(500);
    const runsAtUp = await scalerRuns();
    const shown = visible ?? { at: upAt, runs: runsAtUp };
    const before = await rows(dbFile, `SELECT at, action, outcome, reason FROM scaler_decisions WHERE region = 'syd' AND id < ${Number(upRow.id)} ORDER BY id`);
    console.log(
      `scaled up ${upAfter.toFixed(1)} s after the load began (scaler run ${runsAtUp - runsBefore} since then), ` +
        `${((upAt - shown.at) / 1000).toFixed(1)} s and ${runsAtUp - shown.runs} run(s) after it showed in a heartbeat ` +
        `(interval ${INTERVAL} s); syd decisions before it: ${JSON.stringify(before)}`,
    );
    // Within two intervals of the load showing: by the second run that starts after it shows. A run already under
    // way at that moment (it read the table before) finishes after it and is counted too: hence at most 3.
    expect(runsAtUp - shown.runs).toBeLessThanOrEqual(3);
    expect(runsAtUp - runsBefore).toBeGreaterThanOrEqual(1);
    load.kill("SIGTERM");
    await load.exited;
    load = undefined;
    const up = await rows(dbFile, "SELECT * FROM scaler_decisions WHERE region = 'syd' AND action = 'up' AND outcome = 'ok'");
    expect(up.length).toBeGreaterThan(0);
    expect(String(up[0]!.reason)).toContain("per machine > target");

    await waitUntil(() => running("syd").length === 1, { timeoutMs: 60_000, intervalMs: 200 }, "syd back to one machine");
    const downs = await rows(dbFile, "SELECT at, from_count, to_count FROM scaler_decisions WHERE region = 'syd' AND action = 'down' AND outcome = 'ok' ORDER BY id");
    expect(downs.length).toBeGreaterThan(0);
    for (const d of downs) expect(Number(d.from_count) - Number(d.to_count)).toBe(1);
    for (let i = 1; i < downs.length; i++) {
      expect(Date.parse(String(downs[i]!.at)) - Date.parse(String(downs[i - 1]!.at))).toBeGreaterThanOrEqual(DOWN_COOLDOWN * 1000);
    }
    expect(api.calls.filter((c) => c.endsWith("/p1/stop"))).toEqual([]);
    expect(running("ams")).toEqual(["a2", "p1"]);
  }, 120_000);

  test("a Machines API outage changes nothing and is recorded", async () => {
    const before = [...api.machines.values()].map((m) => `${m.id}:${m.state}`);
    const since = (await rows(dbFile, "SELECT coalesce(max(id), 0) AS id FROM scaler_decisions"))[0]!.id;
    api.fault({ kind: "status", status: 503 });
    const errors = await waitUntil(
      async () => {
        const r = await rows(dbFile, `SELECT * FROM scaler_decisions WHERE id > ${since} AND outcome = 'error'`);
        return r.length > 0 ? r : undefined;
      },
      { timeoutMs: 3 * INTERVAL * 1000, intervalMs: 200 },
      "an error decision",
    );
    expect(String(errors[0]!.reason)).toBe("Machines API unreachable");
    // Another round of the scaler during the outage (a later decision recorded) changed nothing either.
    const firstError = Number(errors[0]!.id);
    await waitUntil(
      async () => (await rows(dbFile, `SELECT id FROM scaler_decisions WHERE id > ${firstError}`)).length > 0,
      { timeoutMs: 3 * INTERVAL * 1000, intervalMs: 200 },
      "a later scaler decision",
    );
    expect([...api.machines.values()].map((m) => `${m.id}:${m.state}`)).toEqual(before);
    api.fault({ kind: "none" });
  }, 60_000);
});
