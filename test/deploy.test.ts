// The Fly deployment files read against each other and against the app, the way LiteFS and Fly read them
// (Docker cannot run here). LiteFS details follow its source: env expansion with `${A == B}` expressions
// before a strict YAML decode (unknown keys fail), `*`-only wildcards anchored on the whole path for
// `passthrough`, and a proxy that serves /litefs/health itself unless a passthrough pattern takes it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, posix } from "node:path";
import { parse as parseYaml } from "yaml";
import fly from "../fly.toml";
import { loadConfig } from "../src/config.ts";
import { primaryBaseUrl } from "../src/platform/cluster/internal.ts";
import { filePathOf } from "../src/platform/db/client.ts";
import { makeApp, ROOT, tempDir, TEST_TIMEOUT_MS } from "./helpers.ts";
import { liteFsNode } from "./support/litefs-api.ts";
import { shutdownBudgetMs } from "../src/platform/lifecycle/shutdown.ts";
import pkg from "../package.json" with { type: "json" };
import { primaryLink } from "../src/main/options.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const read = (file: string) => Bun.file(join(ROOT, file)).text();

/** LiteFS's ExpandEnv: `$VAR`, `${VAR}`, `${A == B}`, `${A != "x"}`. */
function expandEnv(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced: string | undefined, bare: string | undefined) => {
    if (bare !== undefined) return env[bare] ?? "";
    const v = braced!.trim();
    const quoted = v.match(/^(\w+)\s*(==|!=)\s*(['"])(.*)\3$/);
    if (quoted) return String((env[quoted[1]!] ?? "") === quoted[4] ? quoted[2] === "==" : quoted[2] === "!=");
    const vars = v.match(/^(\w+)\s*(==|!=)\s*(\w+)$/);
    if (vars) return String((env[vars[1]!] ?? "") === (env[vars[3]!] ?? "") ? vars[2] === "==" : vars[2] === "!=");
    return env[v] ?? "";
  });
}

/** LiteFS's CompileMatch. */
const compileMatch = (s: string) => new RegExp("^" + s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\\\*/g, ".*") + "$");

/** Every key LiteFS's config decoder knows (cmd/litefs/config.go); it rejects any other. */
const LITEFS_KEYS: Record<string, string[]> = {
  "": ["exit-on-error", "skip-sync", "strict-verify", "exec", "data", "fuse", "http", "proxy", "lease", "backup", "log", "tracing"],
  data: ["dir", "compress", "retention", "retention-monitor-interval"],
  fuse: ["dir", "allow-other", "debug"],
  http: ["addr", "snapshot-timeout"],
  proxy: ["addr", "target", "db", "max-lag", "debug", "passthrough", "always-forward", "primary-redirect-timeout", "read-timeout", "read-header-timeout", "write-timeout", "idle-timeout"],
  lease: ["type", "hostname", "advertise-url", "candidate", "promote", "reconnect-delay", "demote-delay", "databases", "consul"],
  "lease.consul": ["url", "key", "ttl", "lock-delay"],
  exec: ["cmd", "if-candidate"],
};

interface Dockerfile {
  from: string[];
  runs: string[];
  copies: string[];
  env: Record<string, string>;
  args: Record<string, string>;
  workdir: string[];
  entrypoint: unknown;
}

function parseDockerfile(text: string): Dockerfile {
  const out: Dockerfile = { from: [], runs: [], copies: [], env: {}, args: {}, workdir: [], entrypoint: undefined };
  const joined = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const line of joined) {
    const [instr, ...rest] = line.split(/\s+/);
    const arg = rest.join(" ");
    switch (instr!.toUpperCase()) {
      case "FROM": out.from.push(arg); break;
      case "RUN": out.runs.push(arg); break;
      case "COPY": out.copies.push(arg); break;
      case "WORKDIR": out.workdir.push(arg); break;
      case "ENTRYPOINT": out.entrypoint = JSON.parse(arg); break;
      case "ARG": { const [k, v] = arg.split("="); out.args[k!] = v ?? ""; break; }
      case "ENV":
        for (const m of arg.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out.env[m[1]!] = m[2]!.replace(/^"|"$/g, "");
        break;
    }
  }
  return out;
}

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(":") + 1));

const docker = parseDockerfile(await read("Dockerfile"));
const flyEnv = (fly as any).env as Record<string, string>;
/** What a machine's environment holds: the image's ENV, fly.toml [env], what Fly sets, and the secrets. */
const machineEnv = (region: string): Record<string, string> => ({
  ...docker.env,
  ...flyEnv,
  FLY_APP_NAME: (fly as any).app,
  FLY_REGION: region,
  PRIMARY_REGION: (fly as any).primary_region,
  FLY_MACHINE_ID: "148e272c4e4389",
  FLY_CONSUL_URL: "https://consul.example/abc",
  JWT_SECRET: "x".repeat(40),
  INTERNAL_TOKEN: "internal-token-0123456789",
  REDIS_URL: "redis://default:pw@redis.internal:6379",
});
const litefsRaw = await read("litefs.yml");
const litefsFor = (region: string) => parseYaml(expandEnv(litefsRaw, machineEnv(region))) as any;
const litefs = litefsFor((fly as any).primary_region);
const config = loadConfig(machineEnv((fly as any).primary_region));

describe("fly.toml", () => {
  test("public traffic enters the LiteFS proxy, never the app's port", () => {
    const svc = (fly as any).http_service;
    expect(svc.internal_port).toBe(portOf(litefs.proxy.addr));
    expect(svc.internal_port).not.toBe(config.PORT);
    expect((fly as any).services).toBeUndefined();
  });

  test("primary region, SIGINT, and a kill timeout covering the app's whole stop plus LiteFS's lease release", () => {
    expect((fly as any).primary_region).toMatch(/^[a-z]{3}$/);
    expect((fly as any).kill_signal).toBe("SIGINT");
    expect((fly as any).kill_timeout).toBeGreaterThan(config.SHUTDOWN_TIMEOUT_MS / 1000);
    // The app's one deadline (drain, worker and cron together, then the close), then LiteFS exits and
    // releases the Consul lease: a few seconds kept for that.
    expect((fly as any).kill_timeout * 1000).toBeGreaterThanOrEqual(shutdownBudgetMs(config.SHUTDOWN_TIMEOUT_MS) + 5_000);
    expect((fly as any).kill_timeout).toBeLessThanOrEqual(300);
  });

  test("the volume holds LiteFS's data directory, not the FUSE mount", () => {
    const mounts = (fly as any).mounts;
    expect(mounts.source).toBeTruthy();
    const dest = posix.normalize(mounts.destination);
    expect(posix.normalize(litefs.data.dir) === dest || litefs.data.dir.startsWith(dest + "/")).toBe(true);
    expect(litefs.fuse.dir.startsWith(dest + "/") || litefs.fuse.dir === dest).toBe(false);
  });

  test("request-based concurrency; never auto-stopped (each auto-start of a candidate promotes it)", () => {
    const svc = (fly as any).http_service;
    expect(svc.concurrency.type).toBe("requests");
    expect(svc.concurrency.soft_limit).toBeGreaterThan(0);
    expect(svc.concurrency.hard_limit).toBeGreaterThanOrEqual(svc.concurrency.soft_limit);
    // The service covers the primary-region candidates, and litefs.yml promotes on start.
    expect(litefs.lease.promote).toBe(true);
    expect(["off", false]).toContain(svc.auto_stop_machines);
    expect(svc.min_machines_running).toBeGreaterThanOrEqual(1);
  });

  test("routing checks only on /health/ready; /litefs/health (fails on every replica past max-lag) is a top-level check", () => {
    const checks = (fly as any).http_service.checks as { path: string; method: string }[];
    expect(checks.map((c) => c.path)).toEqual(["/health/ready"]);
    for (const c of checks) expect(c.method.toUpperCase()).toBe("GET");
    const top = Object.values((fly as any).checks ?? {}) as { type: string; port: number; path: string }[];
    expect(top.some((c) => c.type === "http" && c.path === "/litefs/health" && c.port === portOf(litefs.proxy.addr))).toBe(true);
  });

  test("a replica whose primary is gone stays ready (the routing check passes)", async () => {
    const data = tempDir("deploy-ready-");
    await (await makeApp({}, data)).close();
    const dir = tempDir("deploy-mount-");
    const node = liteFsNode({ dir, hostname: "m-syd", state: { kind: "disconnected" } });
    const t = await makeApp({ LITEFS_DIR: dir, LITEFS_API_URL: node.url }, data);
    try {
      expect(t.deps.role.isPrimary()).toBe(false);
      expect((await t.request("GET", "/health/ready")).status).toBe(200);
    } finally {
      await t.close();
      node.close();
    }
  });

  test("INTERNAL_PORT is set, private: no service, check or metrics port exposes it", () => {
    expect(config.INTERNAL_PORT).toBe(Number(flyEnv.INTERNAL_PORT));
    const svc = (fly as any).http_service;
    expect(svc.internal_port).not.toBe(config.INTERNAL_PORT);
    expect((fly as any).services).toBeUndefined();
    expect((fly as any).metrics.port).not.toBe(config.INTERNAL_PORT);
    expect(config.INTERNAL_PORT).not.toBe(config.PORT);
    expect(config.INTERNAL_PORT).not.toBe(portOf(litefs.proxy.addr));
    expect(config.INTERNAL_PORT).not.toBe(portOf(litefs.http.addr));
  });

  test("[metrics] scrapes the app's METRICS_PORT", () => {
    expect((fly as any).metrics).toEqual({ port: 9091, path: "/metrics" });
    expect(config.METRICS_PORT).toBe(9091);
    expect(config.METRICS_ENABLED).toBe(true);
  });

  test("[env] sets no FLY_ variable and no secret", () => {
    for (const k of Object.keys(flyEnv)) {
      expect(k.startsWith("FLY_")).toBe(false);
      expect(k).not.toMatch(/SECRET|TOKEN|PASSWORD|REDIS_URL/);
    }
  });
});

describe("litefs.yml", () => {
  test("uses only keys LiteFS knows (its decoder is strict)", () => {
    const check = (obj: Record<string, unknown>, section: string) => {
      for (const k of Object.keys(obj)) expect(LITEFS_KEYS[section], `${section}.${k}`).toContain(k);
    };
    check(litefs, "");
    for (const s of ["data", "fuse", "http", "proxy", "lease"]) check(litefs[s], s);
    check(litefs.lease.consul, "lease.consul");
    for (const e of litefs.exec) check(e, "exec");
  });

  test("the app opens its database in the FUSE mount, under the proxy's db name", () => {
    expect(config.LITEFS_DIR).toBe(litefs.fuse.dir);
    expect(filePathOf(config.DATABASE_URL)).toBe(posix.join(litefs.fuse.dir, litefs.proxy.db));
    expect(litefs.fuse.dir).not.toBe(litefs.data.dir);
  });

  test("the proxy targets the app's port on this machine", () => {
    const [host, port] = litefs.proxy.target.split(":");
    expect(host).toBe("localhost");
    expect(Number(port)).toBe(config.PORT);
    // Listening on :: so the proxy (localhost) and the replicas (6PN, IPv6) both reach it.
    expect(config.HOST).toBe("::");
  });

  test("health paths pass through to the app; /litefs/health stays with the proxy; the API does not", () => {
    const res = (litefs.proxy.passthrough as string[]).map(compileMatch);
    const passes = (path: string) => res.some((re) => re.test(path));
    expect(passes("/health")).toBe(true);
    expect(passes("/health/ready")).toBe(true);
    expect(passes("/health/live")).toBe(true);
    expect(passes("/litefs/health")).toBe(false);
    expect(passes("/api/v1/users")).toBe(false);
    expect(passes("/cluster/stats")).toBe(false);
  });

  test("a Consul lease: candidates (which promote) only in the primary region", () => {
    expect(litefs.lease.type).toBe("consul");
    expect(litefs.lease.promote).toBe(true);
    expect(litefs.lease.candidate).toBe(true);
    expect(litefsFor("syd").lease.candidate).toBe(false);
    expect(litefs.lease.consul.url).toBe("https://consul.example/abc");
    expect(litefs.lease.consul.key).toContain((fly as any).app);
  });

  test("the lease hostname is the machine id: what fly-replay and the replicas' internal calls need", () => {
    expect(litefs.lease.hostname).toBe("148e272c4e4389");
    expect(new URL(litefs.lease["advertise-url"]).hostname).toBe(`148e272c4e4389.vm.${(fly as any).app}.internal`);
    expect(Number(new URL(litefs.lease["advertise-url"]).port)).toBe(portOf(litefs.http.addr));
    // A replica's .primary then holds that id, and its internal calls go to the primary's private listener.
    expect(primaryBaseUrl(primaryLink(config), litefs.lease.hostname)).toBe(`http://148e272c4e4389.vm.${(fly as any).app}.internal:${config.INTERNAL_PORT}`);
    expect(config.INSTANCE_ID).toBe("148e272c4e4389");
  });

  test("exec: migrations only if-candidate, then the app on every node", () => {
    const exec = litefs.exec as { cmd: string; "if-candidate"?: boolean }[];
    expect(exec.length).toBeGreaterThanOrEqual(2);
    const last = exec[exec.length - 1]!;
    expect(last["if-candidate"]).toBeUndefined();
    expect(last.cmd).toBe(pkg.scripts.start);
    for (const e of exec.slice(0, -1)) expect(e["if-candidate"]).toBe(true);
    expect(exec.some((e) => e.cmd.includes("migrate"))).toBe(true);
    for (const e of exec) {
      const file = e.cmd.split(/\s+/).find((w) => w.endsWith(".ts"));
      expect(file && existsSync(join(ROOT, file))).toBe(true);
    }
  });

  test("the migration step works on an empty file and is idempotent (it runs on every candidate)", async () => {
    const dir = tempDir("deploy-");
    const migrate = (litefs.exec as { cmd: string; "if-candidate"?: boolean }[]).find((e) => e["if-candidate"])!;
    // LiteFS runs the exec steps once this node is the primary or connected to one; its API says which.
    const node = liteFsNode({ dir, hostname: "148e272c4e4389", state: { kind: "replica", primary: "other" } });
    const run = () =>
      Bun.spawn(migrate.cmd.split(/\s+/), {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...machineEnv("ams"),
          LITEFS_DIR: dir,
          LITEFS_API_URL: node.url,
          DATABASE_URL: `file:${join(dir, "app.db")}`,
        },
        stdout: "pipe",
        stderr: "pipe",
      }).exited;
    const tables = async () => {
      const { createClient } = await import("@libsql/client");
      const c = createClient({ url: `file:${join(dir, "app.db")}` });
      const names = (await c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")).rows.map((r) => r.name);
      c.close();
      return names;
    };
    try {
      // A candidate that is a replica at that moment leaves the migrations to the primary.
      expect(await run()).toBe(0);
      expect(await tables()).not.toContain("users");
      node.promote();
      expect(await run()).toBe(0);
      expect(await run()).toBe(0);
      expect(await tables()).toContain("users");
      expect(await tables()).toContain("instances");
    } finally {
      node.close();
    }
  }, 30_000);
});

describe("Dockerfile and .dockerignore", () => {
  test("Bun base, fuse3, LiteFS from its image, production install, litefs mount", () => {
    expect(docker.from.every((f) => f.startsWith("oven/bun:"))).toBe(true);
    expect(docker.runs.some((r) => /apt-get install .*\bfuse3\b/.test(r))).toBe(true);
    expect(docker.runs.some((r) => /apt-get install .*\bca-certificates\b/.test(r))).toBe(true);
    // Pinned to LiteFS's last release.
    expect(docker.copies).toContain("--from=flyio/litefs:0.5.14 /usr/local/bin/litefs /usr/local/bin/litefs");
    expect(docker.runs.some((r) => /bun install .*--production/.test(r) && r.includes("--frozen-lockfile"))).toBe(true);
    expect(docker.entrypoint).toEqual(["litefs", "mount"]);
    expect(docker.copies).toContain("litefs.yml /etc/litefs.yml");
    // The exec commands' relative paths resolve from the app's directory.
    expect(docker.workdir.at(-1)).toBe("/app");
  });

  test("the image's environment is a valid production configuration", () => {
    expect(config.NODE_ENV).toBe("production");
    expect(docker.env.NODE_ENV).toBe("production");
    expect(() => loadConfig({ ...machineEnv("ams"), JWT_SECRET: undefined } as Record<string, string | undefined>)).toThrow(/JWT_SECRET/);
  });

  test(".dockerignore keeps the sources out of the junk", async () => {
    const patterns = (await read(".dockerignore")).split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const globs = patterns.map((p) => new Bun.Glob(p.replace(/\/$/, "")));
    const ignored = (path: string) => {
      const parts = path.split("/");
      return parts.some((_, i) => globs.some((g) => g.match(parts.slice(0, i + 1).join("/"))));
    };
    for (const p of ["node_modules/elysia/package.json", ".tmp/x/app.db", "data/app.db", ".git/HEAD", "app.db", "test/cluster.test.ts"]) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ["src/index.ts", "src/migrate-cli.ts", "drizzle/0000_init.sql", "package.json", "bun.lock", "litefs.yml", "tsconfig.json", "Dockerfile"]) {
      expect(ignored(p), p).toBe(false);
    }
  });
});

describe("the app serves what the deployment expects", () => {
  test("/health/ready and /health answer; /litefs/health is LiteFS's, not the app's", async () => {
    const t = await makeApp();
    try {
      expect((await t.request("GET", "/health/ready")).status).toBe(200);
      expect((await t.request("GET", "/health")).status).toBe(200);
      expect((await t.request("GET", "/health/live")).status).toBe(200);
      expect((await t.request("GET", "/litefs/health")).status).toBe(404);
    } finally {
      await t.close();
    }
  });
});
