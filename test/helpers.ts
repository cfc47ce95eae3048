// A complete app instance per call: its own SQLite file and Redis key prefix, driven through app.handle
// (makeApp) or served on a free port of 127.0.0.1 (serveApp).
import { mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { createApp } from "../src/main/app.ts";
import { loadConfig, type Config } from "../src/config.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { buildDeps } from "../src/main/platform.ts";
import { startInstance, type RunningInstance } from "../src/main/serve.ts";
import type { Redis } from "../src/platform/redis.ts";

/**
 * Each test file's default timeout (setDefaultTimeout at its top): the plain `bun test` of the README and CI
 * would otherwise give every test 5 s, which a test that starts servers and hashes passwords can pass on a
 * loaded 2-core machine. bun ignores bunfig's `[test] timeout` (oven-sh/bun#7789), and setDefaultTimeout only
 * applies to the file that calls it (a preload or a shared module covers the first file only).
 */
export const TEST_TIMEOUT_MS = 30_000;

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const ROOT = resolve(import.meta.dir, "..");
export const TMP = join(ROOT, ".tmp");

/** A Redis key prefix of its own (for a test, a file or an instance), so that nothing sees another's keys. */
export function testPrefix(name?: string): string {
  const id = crypto.randomUUID().slice(0, 8);
  return name ? `test:${name}:${id}:` : `test:${id}:`;
}

export function tempDir(prefix = "t-"): string {
  return mkdtempSync(join(TMP, prefix));
}

export function testEnv(overrides: Record<string, string | undefined> = {}, dir = tempDir()): Record<string, string | undefined> {
  return {
    NODE_ENV: "test",
    DATABASE_URL: `file:${join(dir, "app.db")}`,
    LOG_LEVEL: "silent",
    JWT_SECRET: "test-secret-test-secret-test-secret-0123",
    REDIS_PREFIX: testPrefix(),
    METRICS_ENABLED: "false",
    CACHE_WARM_COUNT: "0",
    RATE_LIMIT_LOGIN_PER_MINUTE: "1000",
    // Generous, so that tests of other things never meet a limit (the rate-limit tests set their own).
    RATE_LIMIT_READ_PER_MINUTE: "1000000",
    RATE_LIMIT_WRITE_PER_MINUTE: "1000000",
    RATE_LIMIT_LOGIN_IP_PER_MINUTE: "100000",
    RATE_LIMIT_REGISTER_PER_HOUR: "100000",
    PASSWORD_HASH_CONCURRENCY: "8",
    PASSWORD_HASH_QUEUE: "100000",
    // Never LiteFS's fixed :20202 (a lab may run one); tests that want LiteFS's API start a stand-in.
    LITEFS_API_URL: "http://127.0.0.1:9",
    INTERNAL_PORT: "0",
    ...overrides,
  };
}

/**
 * The two wirings the contract tests run against: the in-process adapters (no Redis) and the real Redis on a
 * prefix of the instance's own. `redis` says which one the app must have been built with.
 */
export const WIRINGS = [
  { wiring: "the in-process adapters", redis: false, env: {} as Record<string, string> },
  { wiring: "Redis", redis: true, env: { REDIS_URL } as Record<string, string> },
];

export interface RequestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
}

export interface TestApp {
  config: Config;
  app: ReturnType<typeof createApp>;
  deps: Awaited<ReturnType<typeof buildDeps>>["deps"];
  request(method: string, path: string, opts?: RequestOptions): Promise<Response>;
  json<T = any>(method: string, path: string, opts?: RequestOptions): Promise<{ status: number; body: T; res: Response }>;
  /** Registers a user and logs in; returns its id and token. */
  user(email?: string, password?: string): Promise<{ id: number; token: string; email: string }>;
  login(email: string, password: string): Promise<string>;
  /** Starts the background work (outbox relay, job worker, cron) as a served instance does. */
  start(): void;
  close(): Promise<void>;
}

export async function makeApp(
  overrides: Record<string, string | undefined> = {},
  dir?: string,
  opts: { logs?: string[] } = {},
): Promise<TestApp> {
  const d = dir ?? tempDir();
  const config = loadConfig(testEnv(overrides, d));
  const logger = opts.logs
    ? createLogger("debug", { instance: config.INSTANCE_ID }, (line) => opts.logs!.push(line))
    : createLogger(config.LOG_LEVEL, { instance: config.INSTANCE_ID });
  const built = await buildDeps(config, logger);
  const app = createApp(built.deps, built.features);
  const request = (method: string, path: string, opts: RequestOptions = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    return app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
  };
  const json = async (method: string, path: string, opts?: RequestOptions) => {
    const res = await request(method, path, opts);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, res };
  };
  const login = async (email: string, password: string) => {
    const r = await json("POST", "/api/v1/auth/login", { body: { email, password } });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.access_token as string;
  };
  let n = 0;
  const user = async (email = `u${++n}-${crypto.randomUUID().slice(0, 6)}@example.com`, password = "correct-horse") => {
    const r = await json("POST", "/api/v1/users", { body: { email, password, full_name: "Test User" } });
    if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
    return { id: r.body.id as number, token: await login(email, password), email };
  };
  return {
    config,
    app,
    deps: built.deps,
    request,
    json,
    user,
    login,
    start: built.start,
    close: async () => {
      // A prefix made for this instance alone leaves no keys behind in the shared Redis.
      // (Not when that Redis is unreachable: the tests of a Redis outage close such instances too.)
      if (overrides.REDIS_PREFIX === undefined && built.deps.redis?.isReady) await dropPrefix(built.deps.redis, config.REDIS_PREFIX);
      await built.close();
      if (!dir) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * A served instance, as `src/index.ts` starts one (Bun.serve, the metrics and internal listeners, the heartbeat,
 * the background work), on a free port of 127.0.0.1, with testEnv's settings plus `overrides`.
 */
export function serveApp(
  overrides: Record<string, string | undefined> = {},
  dir?: string,
  opts?: Parameters<typeof startInstance>[1],
): Promise<RunningInstance> {
  return startInstance(loadConfig(testEnv({ PORT: "0", HOST: "127.0.0.1", ...overrides }, dir)), opts);
}

/** Deletes every key under `prefix`. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await redis.del(keys);
  }
}
