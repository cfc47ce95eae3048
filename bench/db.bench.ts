// Database-backed paths of the service against bare Bun.serve + bun:sqlite servers (bench/db-bare.ts) answering
// the same paths with the same queries and the same bytes, in the same run, as ratios:
//   reads (cache off): detail, posts page, /users/me, preferences, admin user list        wrk -t1 -c64
//   writes: POST posts, PATCH preferences, PATCH user, without Redis and with REDIS_URL    wrk -t1 -c16
//   size: the same reads over 1,000,000 users x 10 posts (built straight into SQLite), admin list last page
//   reads under writes: detail p99 while POST posts runs flat out, against its idle p99
//   driver: the detail path on a bare server using the `libsql` package instead of bun:sqlite
// The service runs as `bun run src/index.ts` (NODE_ENV=production, default logging to /dev/null, metrics on).
//
//   bun run bench -- db        (BENCH_DURATION=5 seconds per run; BENCH_BIG_USERS=1000000, another count is a
//                               partial run)
//   BENCH_DB_ONLY=under_writes,writes bun run bench -- db    only those segments (of reads, under_writes, writes,
//   driver, big), printed: a partial run (lib.ts partialRun)
import { Database as BunDatabase } from "bun:sqlite";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../src/platform/db/client.ts";
import { runMigrations } from "../src/platform/db/migrate.ts";
import { bigUsers, table, writeResult } from "./lib.ts";
import { cpuSeconds, freePort, spawnService, waitFor } from "../test/support/process.ts";

const ROOT = join(import.meta.dir, "..");
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const BIG_USERS = bigUsers();
const SMALL_USERS = 1_000;
const POSTS_PER_USER = 10;
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const JWT_SECRET = "bench-secret-bench-secret-bench-secret-0";
const PASSWORD = "bench-password-1";
const ADMIN_EMAIL = "bench-admin@example.com";
const LIST_LIMIT = 20;
const ONLY = new Set((process.env.BENCH_DB_ONLY ?? "").split(",").filter(Boolean));
const SEGMENTS = ["reads", "under_writes", "writes", "driver", "big"];
for (const o of ONLY) if (!SEGMENTS.includes(o)) throw new Error(`BENCH_DB_ONLY: unknown segment ${o} (of ${SEGMENTS.join(", ")})`);
const runs = (segment: string) => ONLY.size === 0 || ONLY.has(segment);

const dir = join(ROOT, ".tmp", `bench-db-${process.pid}`);
mkdirSync(dir, { recursive: true });

/**
 * Users 1..n with 10 posts and preferences each, generated inside SQLite in one transaction (three statements;
 * the migration's triggers run for every user), on a database migrated as the service would.
 */
export async function build(file: string, n: number): Promise<number> {
  const database = await openDatabase(`file:${file}`, { setWal: true });
  await runMigrations(database);
  database.close();
  const started = performance.now();
  const db = new BunDatabase(file);
  // A throwaway file: no journal while building (a WAL would grow to the whole database and be copied again).
  db.exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000");
  const hash = await Bun.password.hash(PASSWORD, { algorithm: "argon2id" });
  const base = Date.parse("2026-01-01T00:00:00Z") / 1000;
  const at = (ms: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${base} + (${ms}) / 1000.0, 'unixepoch')`;
  const seq = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n)";
  db.transaction(() => {
    db.prepare(
      `INSERT INTO users (email, password_hash, full_name, created_at, updated_at, last_active_at)
       ${seq} SELECT 'bench' || i || '@example.com', $hash, 'Bench User ' || i, ${at("i * 1000")}, ${at("i * 1000")}, ${at("i * 1000")} FROM seq`,
    ).run({ $n: n, $hash: hash });
    db.prepare(
      `INSERT INTO posts (user_id, title, content, created_at)
       ${seq}, p(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM p WHERE k < ${POSTS_PER_USER - 1})
       SELECT i, 'Post ' || k || ' of user ' || i, 'Body of post ' || k || ': lorem ipsum dolor sit amet', ${at("i * 1000 + k")} FROM seq, p`,
    ).run({ $n: n });
    db.prepare(
      `INSERT INTO preferences (user_id, data, updated_at)
       ${seq} SELECT i, json_object('theme', CASE i % 2 WHEN 1 THEN 'dark' ELSE 'light' END, 'lang', 'en'), ${at("i * 1000")} FROM seq`,
    ).run({ $n: n });
  })();
  db.exec("PRAGMA journal_mode = WAL");
  db.close();
  return Math.round(performance.now() - started);
}

interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startService(file: string, extra: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const service = spawnService(
    {
      NODE_ENV: "production",
      DATABASE_URL: `file:${file}`,
      JWT_SECRET,
      METRICS_PORT: "0",
      CACHE_ENABLED: "false",
      CACHE_WARM_COUNT: "0",
      ADMIN_EMAIL,
      ADMIN_PASSWORD: PASSWORD,
      // The limits would answer 429 to a load generator; their cost is not this bench's subject.
      RATE_LIMIT_READ_PER_MINUTE: "0",
      RATE_LIMIT_WRITE_PER_MINUTE: "0",
      RATE_LIMIT_LOGIN_PER_MINUTE: "0",
      ...extra,
    },
    port,
    { stdout: "ignore", stderr: "inherit" },
  );
  await waitFor(`${service.url}/health/live`, 30_000);
  return { url: service.url, pid: service.proc.pid, stop: () => service.stop() };
}

async function startBare(file: string, meId: number, driver = "bun:sqlite"): Promise<Server> {
  const port = await freePort();
  const bare = spawnService({ NODE_ENV: "production", DB: file, ME_ID: String(meId), DRIVER: driver }, port, {
    args: [join(import.meta.dir, "db-bare.ts")],
    stdout: "ignore",
    stderr: "inherit",
  });
  await waitFor(`${bare.url}/api/v1/users/1/preferences`, 10_000);
  return { url: bare.url, pid: bare.proc.pid, stop: () => bare.stop() };
}

async function login(url: string, email: string): Promise<{ token: string; id: number }> {
  const r = await fetch(`${url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${await r.text()}`);
  const token = ((await r.json()) as { access_token: string }).access_token;
  const me = (await (await fetch(`${url}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as { user: { id: number } };
  return { token, id: me.user.id };
}

interface Load {
  method: string;
  paths: string[];
  body?: string;
  connections: number;
}

interface LoadResult {
  /** CPU time the server process spent per request (user + system, from /proc): steadier than req/s on a busy machine. */
  cpu_us?: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  non2xx: number;
  requests: number;
}

const ms = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === "us" ? x / 1000 : m[2] === "s" ? x * 1000 : x;
};

/** One wrk run against a server, with the server's CPU time per request. */
async function wrk(server: Server, load: Load, token: string, seconds = DURATION): Promise<LoadResult> {
  const before = cpuSeconds(server.pid);
  const r = await wrkRun(server.url, load, token, seconds);
  return { ...r, cpu_us: Math.round(((cpuSeconds(server.pid) - before) / r.requests) * 1e7) / 10 };
}

let scripts = 0;
async function wrkRun(url: string, load: Load, token: string, seconds = DURATION): Promise<LoadResult> {
  const lua = join(dir, `req${scripts++}.lua`);
  writeFileSync(
    lua,
    `local paths = {${load.paths.map((p) => JSON.stringify(p)).join(",")}}
local n = #paths
local headers = { ["Authorization"] = "Bearer ${token}", ["Content-Type"] = "application/json" }
local body = ${load.body ? JSON.stringify(load.body) : "nil"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("${load.method}", paths[(i % n) + 1], headers, body)
end
`,
  );
  const proc = Bun.spawn(["wrk", "-t1", `-c${load.connections}`, `-d${seconds}s`, "--latency", "-s", lua, url], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1];
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1];
  if (!Number.isFinite(rps) || !p50 || !p99) throw new Error(`could not parse wrk output:\n${out}`);
  return {
    rps: Math.round(rps),
    p50_ms: ms(p50),
    p99_ms: ms(p99),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
  };
}

/** Random ids (deterministic), as request paths. */
function sample(n: number, count: number, path: (id: number) => string): string[] {
  let x = 12345;
  return Array.from({ length: count }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return path(1 + (x % n));
  });
}

const readLoads = (n: number): Record<string, Load> => ({
  "GET /users/{id} (cache off)": { method: "GET", paths: sample(n, 2000, (id) => `/api/v1/users/${id}`), connections: 64 },
  "GET /users/{id}/posts": { method: "GET", paths: sample(n, 2000, (id) => `/api/v1/users/${id}/posts?page=1&limit=10`), connections: 64 },
  "GET /users/me": { method: "GET", paths: ["/api/v1/users/me"], connections: 64 },
  "GET /users/{id}/preferences": { method: "GET", paths: sample(n, 2000, (id) => `/api/v1/users/${id}/preferences`), connections: 64 },
  "GET /users?page&limit (admin)": { method: "GET", paths: sample(Math.floor(n / LIST_LIMIT), 2000, (p) => `/api/v1/users?page=${p}&limit=${LIST_LIMIT}`), connections: 64 },
});

const writeLoads = (me: number): Record<string, Load> => ({
  "POST /users/{id}/posts": { method: "POST", paths: [`/api/v1/users/${me}/posts`], body: JSON.stringify({ title: "bench", content: "a post written by the benchmark" }), connections: 16 },
  "PATCH /users/{id}/preferences": { method: "PATCH", paths: [`/api/v1/users/${me}/preferences`], body: JSON.stringify({ theme: "dark" }), connections: 16 },
  "PATCH /users/{id}": { method: "PATCH", paths: [`/api/v1/users/${me}`], body: JSON.stringify({ full_name: "Bench Writer" }), connections: 16 },
});

/** The service and the bare server must answer the same bytes on every read path. */
async function sameBytes(service: Server, bare: Server, tokenFor: (name: string) => string, loads: Record<string, Load>): Promise<void> {
  for (const [name, load] of Object.entries(loads)) {
    for (const path of load.paths.slice(0, 3)) {
      const get = async (s: Server) => (await fetch(s.url + path, { headers: { authorization: `Bearer ${tokenFor(name)}` } })).text();
      const [a, b] = await Promise.all([get(service), get(bare)]);
      if (a !== b) throw new Error(`${name}: ${path} differs\nservice: ${a.slice(0, 300)}\nbare:    ${b.slice(0, 300)}`);
    }
  }
}

const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

/** A table row: throughput ratio, and the CPU ratio (bare CPU per request / service CPU per request). */
const row = (path: string, users: number, bare: LoadResult, service: LoadResult) => ({
  path,
  users,
  "bare req/s": bare.rps,
  "service req/s": service.rps,
  ratio: ratio(service.rps, bare.rps),
  "bare CPU us/req": bare.cpu_us ?? NaN,
  "service CPU us/req": service.cpu_us ?? NaN,
  "CPU ratio": ratio(bare.cpu_us!, service.cpu_us!),
  "service p99 ms": service.p99_ms,
  "non-2xx": bare.non2xx + service.non2xx,
});

async function main() {
  const rows: Record<string, string | number>[] = [];
  const result: Record<string, unknown> = {};
  const small = join(dir, "small.db");
  const buildSmallMs = await build(small, SMALL_USERS);
  console.log(`built ${SMALL_USERS} users x ${POSTS_PER_USER} posts in ${buildSmallMs} ms; wrk -t1, ${DURATION}s per run`);

  // Reads over 1,000 users: service (cache off, no Redis) and bare, alternating per path.
  let service = await startService(small);
  const admin = await login(service.url, ADMIN_EMAIL);
  const writer = await login(service.url, "bench1@example.com");
  let bare = await startBare(small, writer.id);
  const reads = readLoads(SMALL_USERS);
  const tokenFor = (name: string) => (name.includes("admin") ? admin.token : writer.token);
  await sameBytes(service, bare, tokenFor, reads);
  const readResults: Record<string, { service: LoadResult; bare: LoadResult }> = {};
  for (const [name, load] of runs("reads") ? Object.entries(reads) : []) {
    const token = tokenFor(name);
    await wrk(bare, load, token, 1);
    await wrk(service, load, token, 1);
    const b = await wrk(bare, load, token);
    const s = await wrk(service, load, token);
    readResults[name] = { service: s, bare: b };
    rows.push(row(name, SMALL_USERS, b, s));
  }
  result.reads = readResults;

  // Reads while writes run flat out (service): detail p99 idle, then with POST posts on 16 more connections.
  const detail = reads["GET /users/{id} (cache off)"]!;
  if (runs("under_writes")) {
    const idle = await wrk(service, { ...detail, connections: 16 }, writer.token);
    const [underWrites, writesMeanwhile] = await Promise.all([
      wrk(service, { ...detail, connections: 16 }, writer.token),
      wrk(service, writeLoads(writer.id)["POST /users/{id}/posts"]!, writer.token),
    ]);
    result.reads_under_writes = { idle, under_writes: underWrites, writes: writesMeanwhile, p99_ratio: ratio(underWrites.p99_ms, idle.p99_ms) };
  }

  // Writes: bare, service without Redis, service with REDIS_URL (each write invalidates the user's cache tag).
  const writeResults: Record<string, { bare: LoadResult; service: LoadResult; service_redis?: LoadResult }> = {};
  const writes = runs("writes") ? writeLoads(writer.id) : {};
  for (const [name, load] of Object.entries(writes)) {
    await wrk(bare, load, writer.token, 1);
    writeResults[name] = { bare: await wrk(bare, load, writer.token), service: await wrk(service, load, writer.token) };
  }
  await service.stop();
  // The cache on, so that each write invalidates through Redis (with the cache off nothing would be sent).
  if (runs("writes")) service = await startService(small, { REDIS_URL, REDIS_PREFIX: `bench:db:${process.pid}:`, CACHE_ENABLED: "true" });
  for (const [name, load] of Object.entries(writes)) {
    await wrk(service, load, writer.token, 1);
    writeResults[name]!.service_redis = await wrk(service, load, writer.token);
    const w = writeResults[name]!;
    rows.push({
      ...row(name, SMALL_USERS, w.bare, w.service),
      "non-2xx": w.bare.non2xx + w.service.non2xx + w.service_redis!.non2xx,
      "with Redis req/s": w.service_redis!.rps,
      "with Redis CPU us/req": w.service_redis!.cpu_us ?? NaN,
      "Redis CPU ratio": ratio(w.bare.cpu_us!, w.service_redis!.cpu_us!),
    });
  }
  result.writes = writeResults;
  if (runs("writes")) await service.stop();

  // Driver: the detail path on a bare server with the `libsql` package (synchronous, prepared once).
  if (runs("driver")) {
    const libsqlBare = await startBare(small, writer.id, "libsql");
    await wrk(libsqlBare, detail, writer.token, 1);
    const viaLibsql = await wrk(libsqlBare, detail, writer.token);
    await libsqlBare.stop();
    const viaBun = await wrk(bare, detail, writer.token);
    result.driver = { "bun:sqlite": viaBun, libsql: viaLibsql };
    rows.push({ ...row("bare detail: libsql package (as service) vs bun:sqlite (as bare)", SMALL_USERS, viaBun, viaLibsql) });
  }
  await bare.stop();
  if (!runs("big")) {
    table(rows);
    const rw = result.reads_under_writes as { idle: LoadResult; under_writes: LoadResult; writes: LoadResult; p99_ratio: number } | undefined;
    if (rw) console.log(`detail p99 idle ${rw.idle.p99_ms} ms, under flat-out writes ${rw.under_writes.p99_ms} ms (${rw.p99_ratio}x; target <= 2) while ${rw.writes.rps} posts/s (read CPU ${rw.under_writes.cpu_us} us/req)`);
    console.log(JSON.stringify(result));
    writeResult("db", result);
    return;
  }

  // Size: BIG_USERS users x 10 posts.
  const big = join(dir, "big.db");
  const buildBigMs = await build(big, BIG_USERS);
  console.log(`built ${BIG_USERS} users x ${POSTS_PER_USER} posts in ${buildBigMs} ms`);
  const probe = new BunDatabase(big, { readonly: true });
  const timeIt = (sql: string) => {
    const st = probe.prepare(sql);
    st.all();
    const t0 = performance.now();
    st.all();
    return Math.round((performance.now() - t0) * 1000) / 1000;
  };
  const lastPage = Math.ceil(BIG_USERS / LIST_LIMIT);
  result.total_cost_ms = {
    "count(*) FROM users": timeIt("SELECT count(*) FROM users"),
    "table_counts lookup": timeIt("SELECT n FROM table_counts WHERE name = 'users'"),
    "last page by OFFSET": timeIt(`SELECT * FROM users ORDER BY id LIMIT ${LIST_LIMIT} OFFSET ${(lastPage - 1) * LIST_LIMIT}`),
  };
  probe.close();
  service = await startService(big);
  const bigAdmin = await login(service.url, ADMIN_EMAIL);
  const bigWriter = await login(service.url, "bench1@example.com");
  bare = await startBare(big, bigWriter.id);
  const bigReads: Record<string, Load> = {
    "GET /users/{id} (cache off)": { ...detail, paths: sample(BIG_USERS, 2000, (id) => `/api/v1/users/${id}`) },
    "GET /users?page=1 (admin)": { method: "GET", paths: [`/api/v1/users?page=1&limit=${LIST_LIMIT}`], connections: 64 },
    [`GET /users?page=${lastPage} (admin, last)`]: { method: "GET", paths: [`/api/v1/users?page=${lastPage}&limit=${LIST_LIMIT}`], connections: 64 },
  };
  await sameBytes(service, bare, (name) => (name.includes("admin") ? bigAdmin.token : bigWriter.token), bigReads);
  const bigResults: Record<string, { service: LoadResult; bare: LoadResult }> = {};
  for (const [name, load] of Object.entries(bigReads)) {
    const token = name.includes("admin") ? bigAdmin.token : bigWriter.token;
    await wrk(service, load, token, 1);
    const b = await wrk(bare, load, token);
    const s = await wrk(service, load, token);
    bigResults[name] = { service: s, bare: b };
    rows.push(row(name, BIG_USERS, b, s));
  }
  await bare.stop();
  await service.stop();
  result.big = bigResults;

  table(rows);
  if (ONLY.size > 0) {
    console.log(JSON.stringify(result));
    writeResult("db", result);
    return;
  }
  const detailSmall = readResults["GET /users/{id} (cache off)"]!.service.rps;
  const detailBig = bigResults["GET /users/{id} (cache off)"]!.service.rps;
  const first = bigResults["GET /users?page=1 (admin)"]!.service.rps;
  const last = bigResults[`GET /users?page=${lastPage} (admin, last)`]!.service.rps;
  const rw = result.reads_under_writes as { idle: LoadResult; under_writes: LoadResult; writes: LoadResult; p99_ratio: number };
  console.log(`\ndetail miss, 1,000 users / ${BIG_USERS} users: ${ratio(detailSmall, detailBig)}x (target <= 1.5)`);
  console.log(`admin list at ${BIG_USERS} users, last page / first page req/s: ${ratio(last, first)}`);
  console.log(`total: ${JSON.stringify(result.total_cost_ms)} (ms)`);
  console.log(`detail p99 idle ${rw.idle.p99_ms} ms, under flat-out writes ${rw.under_writes.p99_ms} ms (${rw.p99_ratio}x; target <= 2) while ${rw.writes.rps} posts/s`);
  writeResult("db", {
    description:
      `The service's database paths (cache off) against bare Bun.serve + bun:sqlite servers answering the same paths with the same statements and bytes, same run; writes without and with Redis; reads under flat-out writes; ${BIG_USERS.toLocaleString("en-US")} users x ${POSTS_PER_USER} posts built straight into SQLite. See docs/database.md.`,
    command: "bun run bench -- db",
    load_generator: "wrk -t1",
    duration_s: DURATION,
    users: { small: SMALL_USERS, big: BIG_USERS },
    posts_per_user: POSTS_PER_USER,
    build_ms: { small: buildSmallMs, big: buildBigMs },
    service: "bun run src/index.ts, NODE_ENV=production, CACHE_ENABLED=false, LOG_LEVEL=info to /dev/null, metrics on",
    bare: "bench/db-bare.ts: Bun.serve + bun:sqlite, the same statements prepared once, the same bytes",
    rows,
    ...result,
  });
  if (rows.some((r) => Number(r["non-2xx"]) > 0)) throw new Error("some responses were not 2xx");
}

if (import.meta.main) {
  try {
    await main();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
