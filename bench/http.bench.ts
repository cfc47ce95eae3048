// HTTP benchmark of the cached read: GET /api/v1/users/{id} with a bearer token over 1,000 users with 10 posts
// each, 64 connections, side by side in the same run with a bare Bun.serve answering the same path with the
// same bytes (no framework, no auth, no cache; it receives the same requests, bearer header included, and ignores the header). Also the L2-hit path (L1 off) and the database path (cache
// off). The service runs as `bun run src/index.ts` with its default logging (LOG_LEVEL=info, one JSON line
// per request) written to /dev/null. Load generator: wrk when installed, else autocannon.
//
//   bun run bench -- http                 (BENCH_DURATION=10 seconds per run, BENCH_ROUNDS=2 alternations)
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { openDatabase } from "../src/platform/db/client.ts";
import { runMigrations } from "../src/platform/db/migrate.ts";
import { posts, preferences, users } from "../src/platform/db/schema/index.ts";
import { table, writeResult } from "./lib.ts";
import { cpuSeconds, freePort, spawnService, waitFor } from "../test/support/process.ts";
import { waitUntil } from "../test/support/wait.ts";

const ROOT = join(import.meta.dir, "..");
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = 64;
const USERS = 1_000;
const POSTS_PER_USER = 10;
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const JWT_SECRET = "bench-secret-bench-secret-bench-secret-0";
const PASSWORD = "bench-password-1";

const dir = join(ROOT, ".tmp", `bench-http-${process.pid}`);
mkdirSync(dir, { recursive: true });
const DATABASE_URL = `file:${join(dir, "app.db")}`;

async function seed(): Promise<number[]> {
  const database = await openDatabase(DATABASE_URL, { setWal: true });
  await runMigrations(database);
  const hash = await Bun.password.hash(PASSWORD, { algorithm: "argon2id" });
  const ids: number[] = [];
  const base = Date.parse("2026-01-01T00:00:00Z");
  for (let start = 0; start < USERS; start += 100) {
    const rows = Array.from({ length: Math.min(100, USERS - start) }, (_, j) => {
      const i = start + j;
      const at = new Date(base + i * 1000).toISOString();
      return { email: `bench${i}@example.com`, passwordHash: hash, fullName: `Bench User ${i}`, createdAt: at, updatedAt: at, lastActiveAt: at };
    });
    const inserted = await database.db.insert(users).values(rows).returning({ id: users.id });
    ids.push(...inserted.map((r) => r.id));
  }
  for (let start = 0; start < ids.length; start += 50) {
    const chunk = ids.slice(start, start + 50);
    const rows = chunk.flatMap((userId) =>
      Array.from({ length: POSTS_PER_USER }, (_, p) => ({
        userId,
        title: `Post ${p} of user ${userId}`,
        content: `Body of post ${p}: ${"lorem ipsum dolor sit amet ".repeat(4)}`,
        createdAt: new Date(base + userId * 1000 + p).toISOString(),
      })),
    );
    await database.db.insert(posts).values(rows);
    await database.db.insert(preferences).values(chunk.map((userId) => ({ userId, data: { theme: userId % 2 ? "dark" : "light", lang: "en" } })));
  }
  const [check] = await database.db.select({ id: users.id }).from(users).where(eq(users.id, ids[0]!));
  if (!check) throw new Error("seed failed");
  database.close();
  return ids;
}

interface Service {
  url: string;
  proc: { pid: number };
  stop(): Promise<void>;
}

async function startService(extra: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const service = spawnService(
    {
      NODE_ENV: "production",
      DATABASE_URL,
      REDIS_URL,
      REDIS_PREFIX: `bench:http:${process.pid}:${crypto.randomUUID().slice(0, 6)}:`,
      JWT_SECRET,
      METRICS_PORT: "0", // metrics on (the default), on a free port
      RATE_LIMIT_LOGIN_PER_MINUTE: "1000",
      // On, so the figures include the limiter's per-request decision, and high enough that one token at full
      // speed never meets it.
      RATE_LIMIT_READ_PER_MINUTE: "1000000000",
      ADMIN_EMAIL: "bench-admin@example.com",
      ADMIN_PASSWORD: PASSWORD,
      // For experiments only, e.g. BENCH_SERVICE_ENV='{"LOG_LEVEL":"silent"}'; the published figures leave it unset.
      ...(JSON.parse(process.env.BENCH_SERVICE_ENV ?? "{}") as Record<string, string>),
      ...extra,
    },
    port,
    { stdout: "ignore", stderr: "inherit" }, // the default JSON request log goes to /dev/null
  );
  await waitFor(`${service.url}/health/live`, 20_000);
  return { url: service.url, proc: service.proc, stop: () => service.stop() };
}

const BARE_SERVER = `
const bodies = new Map(Object.entries(await Bun.file(process.env.BODIES).json()));
const prefix = "/api/v1/users/";
const server = Bun.serve({
  port: Number(process.env.PORT), hostname: "127.0.0.1",
  fetch(req) {
    const url = req.url;
    const at = url.indexOf(prefix);
    const body = at >= 0 ? bodies.get(url.slice(at + prefix.length)) : undefined;
    if (body === undefined) return new Response("not found", { status: 404 });
    return new Response(body, { headers: { "content-type": "application/json" } });
  },
});
console.log("ready");
`;

async function startBare(bodiesFile: string): Promise<Service> {
  const port = await freePort();
  const script = join(dir, "bare-server.ts");
  writeFileSync(script, BARE_SERVER);
  // NODE_ENV as the service has it: Bun.serve's `development` defaults from it.
  const bare = spawnService({ NODE_ENV: "production", BODIES: bodiesFile }, port, { args: [script], stdout: "ignore", stderr: "inherit" });
  const first = await waitUntil(() => fetch(`${bare.url}/api/v1/users/1`), { timeoutMs: 10_000, intervalMs: 50, retryErrors: true }, "the bare server");
  await first.arrayBuffer();
  return { url: bare.url, proc: bare.proc, stop: () => bare.stop() };
}

interface LoadResult {
  /** CPU time the server process spent per request (user + system), from /proc: less sensitive to a busy machine. */
  cpu_us_per_req?: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  non2xx: number;
  requests: number;
}

const hasWrk = Bun.which("wrk") !== null;

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(url: string, ids: number[], token: string | null, seconds: number): Promise<LoadResult> {
  const lua = join(dir, "req.lua");
  writeFileSync(
    lua,
    `local ids = {${ids.join(",")}}
local n = #ids
local headers = {}
${token ? `headers["Authorization"] = "Bearer ${token}"` : ""}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/api/v1/users/" .. ids[(i % n) + 1], headers)
end
`,
  );
  const proc = Bun.spawn(["wrk", "-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "-s", lua, url], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1];
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors:.*/.exec(out)?.[0];
  if (!Number.isFinite(rps) || !p50 || !p99) throw new Error(`could not parse wrk output:\n${out}`);
  if (errors) console.error(`wrk: ${errors}`);
  return { rps, p50_ms: ms(p50), p99_ms: ms(p99), non2xx, requests };
}

async function autocannon(url: string, ids: number[], token: string | null, seconds: number): Promise<LoadResult> {
  // Only when wrk is missing (`apt-get install -y wrk`); autocannon is a dev dependency for that case.
  const mod = (await import("autocannon" as string)) as { default: (opts: object) => Promise<any> };
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const r = await mod.default({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: ids.map((id) => ({ method: "GET", path: `/api/v1/users/${id}`, headers })),
  });
  return { rps: r.requests.average, p50_ms: r.latency.p50, p99_ms: r.latency.p99, non2xx: r.non2xx, requests: r.requests.total };
}

async function load(target: Service, ids: number[], token: string | null, seconds = DURATION): Promise<LoadResult> {
  const before = cpuSeconds(target.proc.pid);
  const r = await (hasWrk ? wrk(target.url, ids, token, seconds) : autocannon(target.url, ids, token, seconds));
  const used = cpuSeconds(target.proc.pid) - before;
  return { ...r, cpu_us_per_req: Math.round((used / r.requests) * 1e7) / 10 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function login(url: string): Promise<string> {
  const r = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "bench0@example.com", password: PASSWORD }),
  });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** The service's own cache counters after a run (GET /cache/stats as the admin). */
async function cacheStats(url: string): Promise<unknown> {
  const r = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "bench-admin@example.com", password: PASSWORD }),
  });
  const { access_token } = (await r.json()) as { access_token: string };
  return (await fetch(`${url}/cache/stats`, { headers: { authorization: `Bearer ${access_token}` } })).json();
}

/** Reads every id once (filling the cache), then checks that a few answer from `source`. */
async function expectSource(url: string, ids: number[], token: string, source: string): Promise<void> {
  const get = (id: number) => fetch(`${url}/api/v1/users/${id}`, { headers: { authorization: `Bearer ${token}` } });
  for (const id of ids) await (await get(id)).arrayBuffer();
  const sources = new Set<string>();
  for (const id of ids.slice(0, 5)) {
    const r = await get(id);
    sources.add(r.headers.get("x-cache") ?? "none");
    await r.arrayBuffer();
  }
  if (!(sources.size === 1 && sources.has(source))) throw new Error(`expected ${source} before measuring, got ${[...sources]}`);
}

async function main() {
  console.log(`seeding ${USERS} users x ${POSTS_PER_USER} posts; load generator: ${hasWrk ? "wrk -t1" : "autocannon"}, ${CONNECTIONS} connections, ${DURATION}s per run`);
  const ids = await seed();

  // Bodies for the bare server: exactly what the service answers for each id.
  let service = await startService({});
  const token = await login(service.url);
  const bodies: Record<string, string> = {};
  for (const id of ids) {
    const r = await fetch(`${service.url}/api/v1/users/${id}`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status !== 200) throw new Error(`GET /users/${id}: ${r.status}`);
    bodies[String(id)] = await r.text();
  }
  await expectSource(service.url, ids, token, "hit-l1");
  const bodiesFile = join(dir, "bodies.json");
  writeFileSync(bodiesFile, JSON.stringify(bodies));
  const avgBytes = Math.round(Object.values(bodies).reduce((n, b) => n + b.length, 0) / ids.length);

  const bare = await startBare(bodiesFile);
  const same = await (await fetch(`${bare.url}/api/v1/users/${ids[7]}`)).text();
  if (same !== bodies[String(ids[7])]) throw new Error("bare server does not answer the same bytes");

  const runs: { bare: LoadResult[]; l1: LoadResult[] } = { bare: [], l1: [] };
  // Both servers get the very same requests, bearer header included; the bare one ignores it.
  await load(bare, ids, token, 2); // warm-up
  await load(service, ids, token, 2);
  for (let round = 0; round < ROUNDS; round++) {
    runs.bare.push(await load(bare, ids, token));
    runs.l1.push(await load(service, ids, token));
  }
  await bare.stop();
  const statsL1 = await cacheStats(service.url);
  await service.stop();

  if (process.env.BENCH_L1_ONLY) {
    // Experiments: only the bare server and the L1 path, printed raw.
    console.log(JSON.stringify({ bare: runs.bare.map((r) => [r.rps, r.cpu_us_per_req]), l1: runs.l1.map((r) => [r.rps, r.cpu_us_per_req]) }));
    writeResult("http", runs);
    return;
  }
  // The L2 asked on every read: under the default adaptive policy an instance on the same machine as Redis,
  // loaded flat out, finds a local SQLite read cheaper than the round trip and skips the L2 (l2-policy.ts), and
  // this row would measure the database path.
  service = await startService({ CACHE_L1_ENABLED: "false", CACHE_L2_POLICY: "always" });
  await expectSource(service.url, ids, token, "hit-l2");
  await load(service, ids, token, 2);
  const l2 = await load(service, ids, token);
  const statsL2 = await cacheStats(service.url);
  await service.stop();

  service = await startService({ CACHE_ENABLED: "false" });
  await load(service, ids, token, 2);
  const db = await load(service, ids, token);
  await service.stop();

  const bareRps = median(runs.bare.map((r) => r.rps));
  const pick = (rs: LoadResult[]) => ({
    rps: median(rs.map((r) => r.rps)),
    p50_ms: median(rs.map((r) => r.p50_ms)),
    p99_ms: median(rs.map((r) => r.p99_ms)),
    cpu_us: median(rs.map((r) => r.cpu_us_per_req ?? NaN)),
    non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
  });
  const rows = [
    { name: "bare Bun.serve (same bytes)", ...pick(runs.bare) },
    { name: "service, L1 hit", ...pick(runs.l1) },
    { name: "service, L2 hit (L1 off)", ...pick([l2]) },
    { name: "service, database (cache off)", ...pick([db]) },
  ].map((r) => ({ ...r, ratio_to_bare: Math.round((r.rps / bareRps) * 1000) / 1000 }));
  table(rows.map((r) => ({ path: r.name, "req/s": Math.round(r.rps), "p50 ms": r.p50_ms, "p99 ms": r.p99_ms, "non-2xx": r.non2xx, ratio: r.ratio_to_bare, "server CPU us/req": r.cpu_us })));
  const l1Ratio = rows[1]!.ratio_to_bare;
  console.log(`\nservice L1 / bare = ${l1Ratio} (target >= 0.7); average body ${avgBytes} bytes; rounds: ${ROUNDS}, medians shown`);
  writeResult("http", {
    load_generator: hasWrk ? "wrk -t1" : "autocannon",
    connections: CONNECTIONS,
    duration_s: DURATION,
    rounds: ROUNDS,
    users: USERS,
    posts_per_user: POSTS_PER_USER,
    average_body_bytes: avgBytes,
    service_logging: "LOG_LEVEL=info (default), stdout to /dev/null",
    rows,
    raw: { bare: runs.bare, l1: runs.l1, l2, db },
    cache_stats: { l1_run: statsL1, l2_run: statsL2 },
    target_l1_ratio: 0.7,
    l1_ratio: l1Ratio,
  });
  console.log(`cache stats after the L1 runs: ${JSON.stringify(statsL1)}`);
  console.log(`cache stats after the L2 run:  ${JSON.stringify(statsL2)}`);
  if (rows.some((r) => r.non2xx > 0)) throw new Error("some responses were not 2xx");
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
