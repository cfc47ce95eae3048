// The environment, validated once. Nothing else in the code reads process.env:
// everything receives the frozen Config built here.
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { hostname } from "node:os";

const Int = (min: number, max: number, def: number) => T.Integer({ minimum: min, maximum: max, default: def });
const Bool = (def: boolean) => T.Boolean({ default: def });

/** Every variable the service reads, with its default. Names are the environment's names. */
const EnvSchema = T.Object({
  NODE_ENV: T.Union([T.Literal("development"), T.Literal("production"), T.Literal("test")], { default: "development" }),
  PORT: Int(0, 65535, 3000),
  HOST: T.String({ minLength: 1, default: "0.0.0.0" }),
  /** Let several processes share PORT (the local cluster mode sets it). */
  REUSE_PORT: Bool(false),
  DATABASE_URL: T.String({ pattern: "^(file:|libsql:|https?:|wss?:)", default: "file:./data/app.db" }),
  /** Which driver opens DATABASE_URL: bun:sqlite for file: URLs, libsql otherwise; set to force one. */
  DATABASE_DRIVER: T.Union([T.Literal("auto"), T.Literal("bun:sqlite"), T.Literal("libsql")], { default: "auto" }),
  /** How long a write waits for another process's write lock before answering 503. */
  DB_WRITE_WAIT_MS: Int(0, 60_000, 3_000),
  /** Writes let into the app at once per instance (the others wait their turn, so reads never queue behind many); 0: no bound. */
  WRITE_CONCURRENCY: Int(0, 10_000, 2),
  /** How long a write waits for its turn before it goes in anyway. */
  WRITE_LANE_WAIT_MS: Int(0, 60_000, 1_000),
  REDIS_URL: T.Optional(T.String({ pattern: "^rediss?://" })),
  /** Prefix for every Redis key and channel, so several deployments (or test files) can share one Redis. */
  REDIS_PREFIX: T.String({ default: "ne:" }),
  /** Deadline for every Redis command's reply (a blocking read: after its block time); a hung Redis costs no more. */
  REDIS_COMMAND_TIMEOUT_MS: Int(10, 60_000, 1_000),
  JWT_SECRET: T.Optional(T.String({ minLength: 32 })),
  INTERNAL_TOKEN: T.Optional(T.String({ minLength: 16 })),
  ADMIN_EMAIL: T.Optional(T.String({ format: "email" })),
  ADMIN_PASSWORD: T.Optional(T.String({ minLength: 8, maxLength: 128 })),
  INSTANCE_ID: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
  FLY_MACHINE_ID: T.Optional(T.String({ minLength: 1 })),
  FLY_APP_NAME: T.Optional(T.String({ minLength: 1 })),
  FLY_REGION: T.String({ minLength: 1, default: "local" }),
  PRIMARY_REGION: T.String({ minLength: 1, default: "local" }),
  LITEFS_DIR: T.Optional(T.String({ minLength: 1 })),
  /** LiteFS's HTTP API (`GET /info` says isPrimary); asked only when LITEFS_DIR is set. */
  LITEFS_API_URL: T.String({ pattern: "^https?://", default: "http://127.0.0.1:20202" }),
  PRIMARY_URL: T.Optional(T.String({ pattern: "^https?://" })),
  /** Private listener for /internal/* (replica-to-primary calls); 0 picks a free port (tests). */
  INTERNAL_PORT: Int(0, 65535, 9092),
  HEARTBEAT_INTERVAL: Int(1, 3600, 10),
  METRICS_PORT: Int(0, 65535, 9091),
  /** 0 turns the metrics listener off (tests, several instances on one host). */
  METRICS_ENABLED: Bool(true),
  LOG_LEVEL: T.Union([T.Literal("debug"), T.Literal("info"), T.Literal("warn"), T.Literal("error"), T.Literal("silent")], {
    default: "info",
  }),
  /** How long in-flight requests may take to finish on SIGTERM/SIGINT. */
  SHUTDOWN_TIMEOUT_MS: Int(0, 120_000, 10_000),
  /** On SIGTERM, how long the listener keeps answering (each answer with Connection: close) before it closes. */
  SHUTDOWN_DRAIN_MS: Int(0, 60_000, 1_000),
  /** Largest request body accepted; larger answers 413. */
  BODY_LIMIT_BYTES: Int(1024, 16 * 1024 * 1024, 64 * 1024),

  CACHE_ENABLED: Bool(true),
  CACHE_L1_ENABLED: Bool(true),
  CACHE_L1_MAX_ITEMS: Int(1, 10_000_000, 10_000),
  CACHE_L1_MAX_BYTES: Int(1024, 8 * 1024 * 1024 * 1024, 64 * 1024 * 1024),
  CACHE_L1_MAX_ENTRY_BYTES: Int(64, 64 * 1024 * 1024, 1024 * 1024),
  CACHE_TTL_SECONDS: Int(1, 86_400 * 30, 60),
  CACHE_STALE_GRACE_SECONDS: Int(0, 86_400, 300),
  CACHE_L2_TIMEOUT_MS: Int(1, 10_000, 50),
  /** adaptive: an L1 miss asks the L2 only while its measured round trip is below the local load it saves. */
  CACHE_L2_POLICY: T.Union([T.Literal("adaptive"), T.Literal("always")], { default: "adaptive" }),
  CACHE_BREAKER_THRESHOLD: Int(1, 1000, 5),
  CACHE_BREAKER_COOLDOWN_MS: Int(10, 600_000, 5_000),
  /** How often each instance sends itself a heartbeat through the cache bus. */
  CACHE_BUS_HEARTBEAT_MS: Int(10, 60_000, 200),
  /** L1 is bypassed once the newest heartbeat back is older than this: the bound on a stale L1 read during a Redis hang. */
  CACHE_BUS_DEADLINE_MS: Int(50, 600_000, 750),
  CACHE_WARM_COUNT: Int(0, 100_000, 100),
  CACHE_WARM_TIMEOUT_MS: Int(0, 60_000, 2_000),

  JOB_CONCURRENCY: Int(1, 1000, 8),
  JOB_VISIBILITY_TIMEOUT_MS: Int(100, 3_600_000, 30_000),
  JOB_MAX_RETRIES: Int(0, 100, 3),
  JOB_BACKOFF_BASE_MS: Int(1, 3_600_000, 1_000),
  JOB_BACKOFF_CAP_MS: Int(1, 86_400_000, 300_000),
  JOB_RETENTION_COMPLETED_SECONDS: Int(1, 86_400 * 365, 86_400),
  JOB_RETENTION_FAILED_SECONDS: Int(1, 86_400 * 365, 7 * 86_400),
  /** Off: this instance enqueues but never consumes (used by tests and by dedicated web instances). */
  JOBS_WORKER_ENABLED: Bool(true),
  CRON_ENABLED: Bool(true),
  /** How long a cron lease lives without renewal: the longest a schedule goes unrun after its holder dies. */
  CRON_LEASE_MS: Int(1_000, 600_000, 30_000),
  /** Unset: welcome mails go to the email_outbox table. Set: POSTed as JSON to this URL. */
  MAIL_API_URL: T.Optional(T.String({ pattern: "^https?://" })),
  MAIL_API_TOKEN: T.Optional(T.String({ minLength: 1 })),
  MAIL_FROM: T.String({ minLength: 3, default: "neodyme-edge <no-reply@neodyme-edge.dev>" }),
  MAIL_TIMEOUT_MS: Int(100, 120_000, 10_000),

  /** Requests per minute per caller (token, else client IP); 0 turns a class off. */
  RATE_LIMIT_READ_PER_MINUTE: Int(0, 1_000_000_000, 600),
  RATE_LIMIT_WRITE_PER_MINUTE: Int(0, 1_000_000_000, 60),
  /** Failed logins per minute per account from one client IP (ten times as many from all IPs together). */
  RATE_LIMIT_LOGIN_PER_MINUTE: Int(0, 100_000, 10),
  /** Login attempts per minute per client IP, whatever the account. */
  RATE_LIMIT_LOGIN_IP_PER_MINUTE: Int(0, 100_000, 30),
  RATE_LIMIT_REGISTER_PER_HOUR: Int(0, 100_000, 20),
  /** Header carrying the client IP behind a trusted proxy (on Fly: Fly-Client-IP); unset: the socket address. */
  CLIENT_IP_HEADER: T.Optional(T.String({ pattern: "^[A-Za-z0-9-]{1,64}$" })),
  /** Comma-separated origins allowed to call the API from a browser ("*": any); unset: no CORS. */
  CORS_ORIGINS: T.Optional(T.String({ maxLength: 4096 })),
  /** Strict-Transport-Security max-age in seconds; 0 off. Unset: a year on Fly (FLY_APP_NAME set), else off. */
  HSTS_MAX_AGE: T.Optional(T.Integer({ minimum: 0, maximum: 63_072_000 })),
  /** Password hashes and verifications running at once per instance, and how many more may wait; beyond: 503. */
  PASSWORD_HASH_CONCURRENCY: Int(1, 1024, 2),
  PASSWORD_HASH_QUEUE: Int(0, 100_000, 8),

  /** Circuit breakers, per dependency: "<failures>/<seconds open before a probe>". */
  BREAKER_MAIL_API: T.String({ pattern: "^[1-9][0-9]{0,3}/[1-9][0-9]{0,4}$", default: "5/30" }),
  BREAKER_PRIMARY: T.String({ pattern: "^[1-9][0-9]{0,3}/[1-9][0-9]{0,4}$", default: "3/5" }),
  BREAKER_FLY_MACHINES: T.String({ pattern: "^[1-9][0-9]{0,3}/[1-9][0-9]{0,4}$", default: "3/60" }),

  /** The scaler (docs/operations.md): off, dry-run (decides and records, never acts) or on. */
  SCALER_MODE: T.Union([T.Literal("off"), T.Literal("dry-run"), T.Literal("on")], { default: "dry-run" }),
  SCALER_INTERVAL: Int(5, 3600, 30),
  /** Machines per region: "<n>" for every region, or "ams=2,iad=1,*=0". */
  SCALER_MIN: T.String({ pattern: "^([0-9]+|([a-z0-9*]+=[0-9]+)(,[a-z0-9*]+=[0-9]+)*)$", default: "1" }),
  SCALER_MAX: T.String({ pattern: "^([0-9]+|([a-z0-9*]+=[0-9]+)(,[a-z0-9*]+=[0-9]+)*)$", default: "3" }),
  /** Target load per running machine, in percent of SCALER_CAPACITY (in-flight requests) or of CPU. */
  SCALER_TARGET_PERCENT: Int(10, 100, 60),
  /** In-flight requests one machine is meant to carry at 100 %. */
  SCALER_CAPACITY: Int(1, 100_000, 50),
  SCALER_UP_COOLDOWN: Int(0, 86_400, 60),
  SCALER_DOWN_COOLDOWN: Int(0, 86_400, 600),
  FLY_API_TOKEN: T.Optional(T.String({ minLength: 1 })),
  /** Base URL of the Machines API (a stand-in in tests). */
  FLY_API_URL: T.String({ pattern: "^https?://", default: "https://api.machines.dev" }),
});

type Env = Static<typeof EnvSchema>;

export type Config = Readonly<
  Omit<Env, "INSTANCE_ID"> & {
    INSTANCE_ID: string;
    /** The secret actually used: JWT_SECRET, or a random one per process outside production. */
    jwtSecret: string;
    jwtSecretIsRandom: boolean;
    /** CORS_ORIGINS, parsed and checked: `*` or origins without a trailing slash; empty when unset. */
    corsOrigins: readonly string[];
  }
>;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`invalid configuration: ${variable}: ${reason}`);
    this.name = "ConfigError";
  }
}

const BOOL_TRUE = new Set(["1", "true", "yes", "on"]);
const BOOL_FALSE = new Set(["0", "false", "no", "off"]);

function coerce(name: string, schema: TSchema, raw: string): unknown {
  const type = (schema as { type?: string }).type;
  if (type === "integer") {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got ${shown(name, raw)}`);
    return Number(raw);
  }
  if (type === "boolean") {
    const v = raw.trim().toLowerCase();
    if (BOOL_TRUE.has(v)) return true;
    if (BOOL_FALSE.has(v)) return false;
    throw new ConfigError(name, `expected true/false, got ${shown(name, raw)}`);
  }
  return raw;
}

function describe(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.anyOf)) return `one of ${(s.anyOf as { const: string }[]).map((x) => x.const).join(", ")}`;
  const parts: string[] = [];
  if (s.type === "integer") parts.push(`an integer between ${s.minimum} and ${s.maximum}`);
  if (s.minLength) parts.push(`at least ${s.minLength} characters`);
  if (s.maxLength) parts.push(`at most ${s.maxLength} characters`);
  if (s.pattern) parts.push(`matching ${s.pattern}`);
  if (s.format) parts.push(`a valid ${s.format}`);
  return parts.join(", ") || "a valid value";
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Variables whose value must never reach a log line, not even when it is refused (deploy logs are widely read). */
const SECRET_NAME = /SECRET|TOKEN|PASSWORD|KEY/;

/** What an error message may show of a refused value: secrets by length only, credentials in URLs masked. */
function shown(name: string, raw: string | undefined): string {
  const value = String(raw);
  if (SECRET_NAME.test(name)) return `a value of ${value.length} characters`;
  return `"${value.replace(/\/\/[^/@\s]*@/, "//***@")}"`;
}

/** CORS_ORIGINS as a list: each origin `*` or scheme://host[:port] as a browser sends it in `Origin`, without a trailing slash. */
function parseOrigins(raw: string | undefined): string[] {
  const list = (raw ?? "").split(",").map((x) => x.trim()).filter((x) => x !== "");
  for (const o of list) {
    if (o === "*") continue;
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === "http:" || u.protocol === "https:") && u.origin.toLowerCase() === o.replace(/\/+$/, "").toLowerCase();
    } catch {}
    if (!ok) throw new ConfigError("CORS_ORIGINS", `each origin must be * or scheme://host[:port] (no path), got ${shown("CORS_ORIGINS", o)}`);
  }
  return list.map((o) => o.replace(/\/+$/, ""));
}

/** Builds the configuration from an environment (process.env by default). Throws ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    input[name] = coerce(name, schema as TSchema, raw);
  }
  const withDefaults = Value.Default(EnvSchema, input) as Record<string, unknown>;
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const value = withDefaults[name];
    if (value === undefined) continue;
    if (name === "ADMIN_EMAIL") {
      if (!EMAIL_RE.test(String(value))) throw new ConfigError(name, "must be a valid email address");
      continue;
    }
    const s = schema as TSchema;
    const check = { ...s };
    delete (check as Record<string, unknown>).format;
    if (!Value.Check(check, value)) throw new ConfigError(name, `must be ${describe(s)}, got ${shown(name, env[name])}`);
  }
  const e = withDefaults as Env;
  const corsOrigins = Object.freeze(parseOrigins(e.CORS_ORIGINS));
  if ((e.ADMIN_EMAIL === undefined) !== (e.ADMIN_PASSWORD === undefined)) {
    throw new ConfigError(e.ADMIN_EMAIL ? "ADMIN_PASSWORD" : "ADMIN_EMAIL", "ADMIN_EMAIL and ADMIN_PASSWORD must be set together");
  }
  if (e.SCALER_MODE === "on" && (!e.FLY_API_TOKEN || !e.FLY_APP_NAME)) {
    throw new ConfigError(e.FLY_API_TOKEN ? "FLY_APP_NAME" : "FLY_API_TOKEN", "required when SCALER_MODE=on (the scaler acts through the Machines API)");
  }
  if (e.NODE_ENV === "production" && !e.JWT_SECRET) {
    throw new ConfigError("JWT_SECRET", "required when NODE_ENV=production (at least 32 characters)");
  }
  const jwtSecret = e.JWT_SECRET ?? Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  return Object.freeze({
    ...e,
    INSTANCE_ID: e.INSTANCE_ID ?? e.FLY_MACHINE_ID ?? `${hostname()}-${process.pid}`,
    jwtSecret,
    jwtSecretIsRandom: !e.JWT_SECRET,
    corsOrigins,
  });
}
