// `bun run chaos [-- --seconds N]`: the fault scenarios of docs/reliability.md against real service processes,
// a private redis-server on a spare loopback port (never the shared one) and a temporary SQLite file; bounded
// (three phases per scenario). One row per scenario: fault, requests, 5xx, connection errors,
// lost or undone writes, stale reads (older than 1 s), p99 before/during/after. Writes bench/results/chaos.json
// and regenerates docs/benchmarks.md.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { freePort, spawnService, waitFor, type Spawned } from "../test/support/process.ts";
import { startPrivateRedis, type PrivateRedis } from "../test/support/redis-server.ts";
import { p99, runLoad, type LoadResult } from "../test/support/load.ts";
import { writeResult } from "../bench/lib.ts";
import { writeReport } from "../bench/report.ts";

interface Row {
  scenario: string;
  fault: string;
  requests: number;
  status_5xx: number;
  connection_errors: number;
  lost_or_undone_writes: number;
  stale_reads: number;
  p99_ms: { before: number | null; during: number | null; after: number | null };
  note?: string;
}

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
/** Length of each phase (before, during, after), seconds. */
const PHASE_MS = arg("seconds", 5) * 1000;
const ADMIN = { email: "chaos-admin@example.com", password: "chaos-admin-password" };

function env(dir: string, redis: PrivateRedis, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: "production",
    DATABASE_URL: `file:${join(dir, "app.db")}`,
    REDIS_URL: redis.url,
    JWT_SECRET: "chaos-secret-chaos-secret-chaos-secret-00",
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    METRICS_ENABLED: "false",
    CRON_ENABLED: "false",
    LOG_LEVEL: "error",
    CACHE_WARM_COUNT: "0",
    RATE_LIMIT_READ_PER_MINUTE: "0",
    RATE_LIMIT_WRITE_PER_MINUTE: "0",
    RATE_LIMIT_LOGIN_PER_MINUTE: "0",
    RATE_LIMIT_LOGIN_IP_PER_MINUTE: "0",
    RATE_LIMIT_REGISTER_PER_HOUR: "0",
    ...extra,
  };
}

async function start(e: Record<string, string>, port?: number): Promise<Spawned> {
  const s = spawnService(e, port ?? (await freePort()));
  await waitFor(`${s.url}/health/ready`, 30_000);
  return s;
}

async function call(url: string, method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}) {
  const res = await fetch(url + path, {
    method,
    headers: { ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function user(url: string, email: string): Promise<{ id: number; token: string }> {
  const r = await call(url, "POST", "/api/v1/users", { email, password: "correct-horse", full_name: "v0" });
  if (r.status !== 201) throw new Error(`register ${email}: ${r.status}`);
  const l = await call(url, "POST", "/api/v1/auth/login", { email, password: "correct-horse" });
  return { id: r.body.id, token: l.body.access_token };
}

const login = async (url: string) => (await call(url, "POST", "/api/v1/auth/login", ADMIN)).body.access_token as string;

/** Three phases of PHASE_MS: the fault is applied at the start of "during" and removed at its end. */
function phases(apply: () => void | Promise<void>, remove: () => void | Promise<void>) {
  let phase = "before";
  const timers = [
    setTimeout(() => {
      phase = "during";
      void apply();
    }, PHASE_MS),
    setTimeout(() => {
      phase = "after";
      void remove();
    }, 2 * PHASE_MS),
  ];
  return { phase: () => phase, durationMs: 3 * PHASE_MS, clear: () => timers.forEach(clearTimeout) };
}

const p99s = (r: LoadResult) => ({ before: p99(r.latencies.before), during: p99(r.latencies.during), after: p99(r.latencies.after) });

/**
 * Redis paused (SIGSTOP) for one phase, two instances: A takes a writer's renames, B serves reads of the same
 * user. A read is stale when it returns a name older than one acknowledged more than a second before it was sent.
 */
async function pauseScenario(redis: PrivateRedis, dir: string): Promise<Row> {
  const a = await start(env(dir, redis));
  const b = await start(env(dir, redis));
  try {
    const u = await user(a.url, "pause@example.com");
    const acked: { at: number; n: number }[] = [{ at: 0, n: 0 }];
    let stale = 0;
    let next = 1;
    const ph = phases(() => redis.pause(), () => redis.resume());
    const result = await runLoad({
      workers: 8,
      durationMs: ph.durationMs,
      phase: ph.phase,
      request: (w) =>
        w === 0
          ? new Request(`${a.url}/api/v1/users/${u.id}`, {
              method: "PATCH",
              headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
              body: JSON.stringify({ full_name: `v${next++}` }),
            })
          : new Request(`${b.url}/api/v1/users/${u.id}`, { headers: { authorization: `Bearer ${u.token}` } }),
      check: async (res, req, sent) => {
        const body = (await res.json()) as { full_name?: string; user?: { full_name: string } };
        if (req.method === "PATCH") {
          if (res.status === 200) acked.push({ at: performance.now(), n: Number(body.full_name!.slice(1)) });
          return;
        }
        if (res.status !== 200) return;
        const seen = Number(body.user!.full_name.slice(1));
        let due = 0;
        for (const w of acked) if (w.at <= sent - 1_000 && w.n > due) due = w.n;
        if (seen < due) stale++;
      },
    });
    ph.clear();
    redis.resume();
    return {
      scenario: "redis-pause",
      fault: `SIGSTOP Redis ${PHASE_MS / 1000} s; writes on A, reads on B`,
      requests: result.requests,
      status_5xx: result.status5xx,
      connection_errors: result.connectionErrors,
      lost_or_undone_writes: 0,
      stale_reads: stale,
      p99_ms: p99s(result),
    };
  } finally {
    redis.resume();
    a.kill("SIGKILL");
    b.kill("SIGKILL");
  }
}

/** Redis SIGKILLed and restarted empty after one phase, mixed load on one instance; every acknowledged write must be there. */
async function killScenario(redis: PrivateRedis, dir: string): Promise<Row> {
  const a = await start(env(dir, redis));
  try {
    const u = await user(a.url, "kill@example.com");
    const last = new Map<string, number>();
    const sent = new WeakMap<Request, [string, number]>();
    const ph = phases(() => redis.kill(), () => redis.revive());
    const result = await runLoad({
      workers: 8,
      durationMs: ph.durationMs,
      phase: ph.phase,
      request: (w, i) => {
        if (w >= 2) return new Request(`${a.url}/api/v1/users/${u.id}`, { headers: { authorization: `Bearer ${u.token}` } });
        const req = new Request(`${a.url}/api/v1/users/${u.id}/preferences`, {
          method: "PATCH",
          headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
          body: JSON.stringify({ [`w${w}`]: i }),
        });
        sent.set(req, [`w${w}`, i]);
        return req;
      },
      check: async (res, req) => {
        await res.arrayBuffer();
        const write = sent.get(req);
        if (write && res.status === 200) last.set(write[0], Math.max(last.get(write[0]) ?? -1, write[1]));
      },
    });
    ph.clear();
    const prefs = (await call(a.url, "GET", `/api/v1/users/${u.id}/preferences`, undefined, u.token)).body as Record<string, number>;
    let lost = 0;
    for (const [k, v] of last) if ((prefs[k] ?? -1) < v) lost++;
    return {
      scenario: "redis-kill",
      fault: `SIGKILL Redis, back empty after ${PHASE_MS / 1000} s; mixed load`,
      requests: result.requests,
      status_5xx: result.status5xx,
      connection_errors: result.connectionErrors,
      lost_or_undone_writes: lost,
      stale_reads: 0,
      p99_ms: p99s(result),
    };
  } finally {
    a.kill("SIGKILL");
  }
}

/**
 * Bulk preference jobs for 40 users; Redis wiped (FLUSHALL) while they run; each user then writes their own
 * value. Undone: a user's own value overwritten. Re-run: a job completed before the wipe that starts again.
 */
async function wipeScenario(redis: PrivateRedis, dir: string): Promise<Row> {
  const a = await start(env(dir, redis, { JOB_CONCURRENCY: "2" }));
  let requests = 0;
  let s5xx = 0;
  const counted = async (...args: Parameters<typeof call>) => {
    requests++;
    const r = await call(...args);
    if (r.status >= 500) s5xx++;
    return r;
  };
  try {
    const admin = await login(a.url);
    const users = [];
    for (let i = 0; i < 40; i++) users.push(await user(a.url, `wipe-${i}@example.com`));
    const bulk = await counted(a.url, "POST", "/api/v1/admin/preferences/bulk", { user_ids: users.map((u) => u.id), preference_updates: { theme: "dark" } }, admin);
    const ids = Object.values(bulk.body.jobs as Record<string, string>);
    const status = async () => (await counted(a.url, "POST", "/api/v1/jobs/status", { job_ids: ids }, admin)).body as Record<string, { status: string; started_at: string | null }>;
    let before = await status();
    while (Object.values(before).filter((j) => j.status === "completed").length < 5) {
      await Bun.sleep(20);
      before = await status();
    }
    const wipedAt = Date.now();
    await redis.wipe();
    for (const [i, u] of users.entries()) await counted(a.url, "PATCH", `/api/v1/users/${u.id}/preferences`, { theme: `own-${i}` }, u.token);
    let unknown = 0;
    const deadline = performance.now() + 60_000;
    let after = await status();
    while (Object.values(after).some((j) => j.status !== "completed") && performance.now() < deadline) {
      unknown += Object.values(after).filter((j) => j.status === "not_found").length;
      await Bun.sleep(200);
      after = await status();
    }
    let reruns = 0;
    // Run again = completed before the wipe, and its recorded start is after it.
    for (const id of ids) if (before[id]!.status === "completed" && Date.parse(after[id]!.started_at ?? "") > wipedAt) reruns++;
    let undone = 0;
    for (const [i, u] of users.entries()) {
      const p = (await counted(a.url, "GET", `/api/v1/users/${u.id}/preferences`, undefined, u.token)).body;
      if (p.theme !== `own-${i}`) undone++;
    }
    return {
      scenario: "redis-wipe",
      fault: "FLUSHALL during 40 bulk preference jobs; users then write",
      requests,
      status_5xx: s5xx,
      connection_errors: 0,
      lost_or_undone_writes: undone,
      stale_reads: 0,
      p99_ms: { before: null, during: null, after: null },
      note: `completed jobs re-run: ${reruns}; job look-ups answering not_found: ${unknown}`,
    };
  } finally {
    a.kill("SIGKILL");
  }
}

/** One instance of three (reusePort) gets SIGTERM under keep-alive load. */
async function sigtermScenario(redis: PrivateRedis, dir: string): Promise<Row> {
  const port = await freePort();
  const e = env(dir, redis, { REUSE_PORT: "true" });
  const instances = [await start(e, port), await start(e, port), await start(e, port)];
  try {
    const url = `http://127.0.0.1:${port}`;
    const u = await user(url, "term@example.com");
    const ph = phases(() => instances[1]!.kill("SIGTERM"), () => undefined);
    const result = await runLoad({
      workers: 32,
      durationMs: ph.durationMs,
      phase: ph.phase,
      request: (w, i) =>
        w % 4 === 0
          ? new Request(`${url}/api/v1/users/${u.id}/preferences`, {
              method: "PATCH",
              headers: { authorization: `Bearer ${u.token}`, "content-type": "application/json" },
              body: JSON.stringify({ [`w${w}`]: i }),
            })
          : new Request(`${url}/api/v1/users/${u.id}`, { headers: { authorization: `Bearer ${u.token}` } }),
    });
    ph.clear();
    const code = await instances[1]!.proc.exited;
    return {
      scenario: "sigterm",
      fault: "SIGTERM 1 of 3 instances (reusePort) under keep-alive load",
      requests: result.requests,
      status_5xx: result.status5xx,
      connection_errors: result.connectionErrors,
      lost_or_undone_writes: 0,
      stale_reads: 0,
      p99_ms: p99s(result),
      note: `stopped instance exit code ${code}`,
    };
  } finally {
    for (const s of instances) s.kill("SIGKILL");
  }
}

const rows: Row[] = [];
for (const scenario of [pauseScenario, killScenario, wipeScenario, sigtermScenario]) {
  const redis = await startPrivateRedis();
  const dir = mkdtempSync(join(tmpdir(), "chaos-"));
  try {
    const row = await scenario(redis, dir);
    rows.push(row);
    console.log(`${row.scenario}: done`);
  } finally {
    await redis.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const cols = ["scenario", "requests", "5xx", "conn err", "lost/undone", "stale >1s", "p99 before", "p99 during", "p99 after"];
const fmt = (v: number | null) => (v === null ? "-" : String(v));
console.log(`\n| ${cols.join(" | ")} |\n|${cols.map(() => "---").join("|")}|`);
for (const r of rows) {
  console.log(
    `| ${r.scenario} | ${r.requests} | ${r.status_5xx} | ${r.connection_errors} | ${r.lost_or_undone_writes} | ${r.stale_reads} | ${fmt(r.p99_ms.before)} | ${fmt(r.p99_ms.during)} | ${fmt(r.p99_ms.after)} |`,
  );
}
for (const r of rows) console.log(`${r.scenario}: ${r.fault}${r.note ? `; ${r.note}` : ""}`);
// With the benchmarks' results, so docs/benchmarks.md shows the run of record (its table takes flat rows).
writeResult("chaos", {
  command: `bun run chaos${PHASE_MS === 5_000 ? "" : ` -- --seconds ${PHASE_MS / 1000}`}`,
  description: "Fault scenarios against real service processes (docs/reliability.md): counts of 5xx, connection errors, lost or undone writes and stale reads, and the p99 (ms) before, during and after each fault.",
  phase_seconds: PHASE_MS / 1000,
  rows: rows.map(({ p99_ms, ...r }) => ({ ...r, p99_before_ms: p99_ms.before, p99_during_ms: p99_ms.during, p99_after_ms: p99_ms.after })),
});
writeReport();
