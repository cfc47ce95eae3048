// The lab's deployment on loopback: a private Redis in the primary region, real service processes per region
// (each with its own LITEFS_DIR, LiteFS node stand-in and position file), delay proxies on every link that
// crosses regions, an edge stand-in per region, and the seeded shared SQLite file.
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { liteFsNode, type LiteFsNode } from "../../test/support/litefs-api.ts";
import { freePort, spawnService, waitFor, type Spawned } from "../../test/support/process.ts";
import { delayProxy, type DelayProxy } from "./delay-proxy.ts";
import { startEdge, type Edge } from "./edge.ts";
import { startReplication } from "./replication.ts";

export interface RegionSpec {
  name: string;
  /** Round trip to the primary region, ms. */
  rttMs: number;
}

export interface LabOptions {
  regions: RegionSpec[];
  /** Service processes per region. */
  perRegion?: number;
  users?: number;
  primaryRedirectTimeoutMs?: number;
  heartbeatSeconds?: number;
  /** Extra environment for every instance (the L2 design under test, log level...). */
  env?: Record<string, string>;
}

export interface Instance {
  id: string;
  region: string;
  port: number;
  internalPort: number;
  url: string;
  node: LiteFsNode;
  proc: Spawned | null;
  env: Record<string, string>;
}

export const LAB_PASSWORD = "lab-password-1";
export const INTERNAL_TOKEN = "lab-internal-token-0123456789";
const ROOT = resolve(import.meta.dir, "../..");

/** Round trip between two regions: each region's RTT is to the primary; between two others, the larger (a stand-in). */
export function rttBetween(regions: RegionSpec[], a: string, b: string): number {
  if (a === b) return 0;
  const ra = regions.find((r) => r.name === a)!;
  const rb = regions.find((r) => r.name === b)!;
  if (ra === regions[0]) return rb.rttMs;
  if (rb === regions[0]) return ra.rttMs;
  return Math.max(ra.rttMs, rb.rttMs);
}

export async function startLab(opts: LabOptions) {
  const regions = opts.regions;
  const primaryRegion = regions[0]!.name;
  const perRegion = opts.perRegion ?? 1;
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, ".tmp", "lab-regions-"));
  const dbFile = join(dir, "app.db");
  const proxies: DelayProxy[] = [];
  const link = (name: string, rttMs: number, targetPort: number) => {
    const p = delayProxy({ name, rttMs, targetPort });
    proxies.push(p);
    return p;
  };

  // Redis lives in the primary region; its own process, so cutting links never touches anyone else's.
  const redisPort = await freePort();
  const redis = Bun.spawn(["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdout: "ignore",
    stderr: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port: redisPort, socket: { data() {} } });
      s.end();
      break;
    } catch {
      await Bun.sleep(50);
    }
  }

  const instances: Instance[] = [];
  for (const r of regions) {
    for (let i = 1; i <= perRegion; i++) {
      const id = `${r.name}-${i}`;
      const litefs = join(dir, `litefs-${id}`);
      mkdirSync(litefs);
      const node = liteFsNode({ dir: litefs, hostname: id });
      const port = await freePort();
      const internalPort = await freePort();
      instances.push({ id, region: r.name, port, internalPort, url: `http://127.0.0.1:${port}`, node, proc: null, env: {} });
    }
  }
  const primary = instances[0]!;
  primary.node.promote();
  for (const inst of instances.slice(1)) inst.node.follow(primary.id);

  // Per region: its link to Redis and to the primary's private listener.
  const redisUrlFor = new Map<string, string>();
  const internalFor = new Map<string, string>();
  for (const r of regions) {
    if (r.name === primaryRegion) {
      redisUrlFor.set(r.name, `redis://127.0.0.1:${redisPort}`);
      internalFor.set(r.name, `http://127.0.0.1:${primary.internalPort}`);
    } else {
      redisUrlFor.set(r.name, `redis://127.0.0.1:${link(`${r.name}->redis@${primaryRegion}`, r.rttMs, redisPort).port}`);
      internalFor.set(r.name, `http://127.0.0.1:${link(`${r.name}->internal@${primary.id}`, r.rttMs, primary.internalPort).port}`);
    }
  }
  // Edge links: from each region's edge to each instance of another region.
  const edgeLinks = new Map<string, string>();
  for (const r of regions) {
    for (const inst of instances) {
      const rtt = rttBetween(regions, r.name, inst.region);
      edgeLinks.set(`${r.name}|${inst.id}`, rtt === 0 ? inst.url : `http://127.0.0.1:${link(`edge@${r.name}->${inst.id}`, rtt, inst.port).port}`);
    }
  }

  const prefix = `lab:${crypto.randomUUID().slice(0, 8)}:`;
  for (const inst of instances) {
    inst.env = {
      NODE_ENV: "production",
      JWT_SECRET: "lab-secret-lab-secret-lab-secret-0123456",
      DATABASE_URL: `file:${dbFile}`,
      REDIS_URL: redisUrlFor.get(inst.region)!,
      REDIS_PREFIX: prefix,
      INSTANCE_ID: inst.id,
      FLY_REGION: inst.region,
      PRIMARY_REGION: primaryRegion,
      LITEFS_DIR: inst.node.dir,
      LITEFS_API_URL: inst.node.url,
      INTERNAL_TOKEN,
      INTERNAL_PORT: String(inst.internalPort),
      PRIMARY_URL: internalFor.get(inst.region)!,
      METRICS_ENABLED: "false",
      LOG_LEVEL: "warn",
      HEARTBEAT_INTERVAL: String(opts.heartbeatSeconds ?? 2),
      SHUTDOWN_TIMEOUT_MS: "2000",
      CACHE_WARM_COUNT: "0",
      RATE_LIMIT_LOGIN_PER_MINUTE: "100000",
      RATE_LIMIT_LOGIN_IP_PER_MINUTE: "100000",
      RATE_LIMIT_READ_PER_MINUTE: "1000000",
      RATE_LIMIT_WRITE_PER_MINUTE: "1000000",
      RATE_LIMIT_REGISTER_PER_HOUR: "100000",
      ...opts.env,
    };
  }
  const startInstance = async (inst: Instance) => {
    inst.proc = spawnService(inst.env, inst.port);
    await waitFor(`${inst.url}/health/ready`, 30_000).catch((err) => {
      throw new Error(`${inst.id}: ${(err as Error).message}\n${inst.proc?.stderr()}\n${inst.proc?.stdout().slice(-2000)}`);
    });
  };

  // The primary first (it migrates), then the seed, then the replicas.
  await startInstance(primary);
  const seeded = seed(dbFile, opts.users ?? 1000);
  await Promise.all(instances.slice(1).map(startInstance));

  const replication = startReplication({
    dbFile,
    primaryDir: primary.node.dir,
    replicas: instances
      .filter((i) => i !== primary)
      .map((i) => {
        const rtt = rttBetween(regions, i.region, primaryRegion);
        const crossing = proxies.filter((p) => p.name.startsWith(`${i.region}->`));
        return { dir: i.node.dir, oneWayMs: rtt / 2, isCut: () => crossing.some((p) => p.isCut) };
      }),
  });

  const edges = new Map<string, Edge>();
  for (const r of regions) {
    edges.set(
      r.name,
      startEdge({
        region: r.name,
        targets: instances.map((inst) => ({
          id: inst.id,
          region: inst.region,
          up: () => inst.proc !== null && inst.proc.proc.exitCode === null && inst.proc.proc.signalCode === null,
          litefsPrimary: () => {
            const s = inst.node.state();
            return s.kind === "primary" ? "self" : s.kind === "replica" ? s.primary : null;
          },
        })),
        urlOf: (from, id) => edgeLinks.get(`${from}|${id}`)!,
        primaryRedirectTimeoutMs: opts.primaryRedirectTimeoutMs ?? 5_000,
      }),
    );
  }

  /** Every link that crosses into or out of the primary region. */
  const primaryLinks = () =>
    proxies.filter((p) => p.name.includes(`@${primaryRegion}`) || p.name.includes(`@${primary.id}`) || instances.some((i) => i.region === primaryRegion && p.name.endsWith(`->${i.id}`)) || p.name.startsWith(`edge@${primaryRegion}->`));

  return {
    dir,
    regions,
    primaryRegion,
    instances,
    primary,
    seeded,
    edgeUrl: (region: string) => edges.get(region)!.url,
    links: proxies,
    /** The delay proxy from a region's edge to an instance of another region. */
    edgeLink: (region: string, instanceId: string) => proxies.find((p) => p.name === `edge@${region}->${instanceId}`),
    /** The delay proxy a region's instances reach Redis through (undefined in the primary region). */
    redisLink: (region: string) => proxies.find((p) => p.name === `${region}->redis@${primaryRegion}`),
    replication,
    /** SIGKILL the primary and cut every link into its region; replicas' LiteFS loses its primary. */
    losePrimary() {
      primary.proc?.kill("SIGKILL");
      for (const p of primaryLinks()) p.cut();
      for (const inst of instances) if (inst !== primary) inst.node.disconnect();
    },
    /** Bring the primary back (a new process, same machine), restore the links, replicas reconnect. */
    async restorePrimary() {
      await primary.proc?.proc.exited;
      await startInstance(primary);
      for (const p of primaryLinks()) p.restore();
      replication.catchUp();
      for (const inst of instances) if (inst !== primary) inst.node.follow(primary.id);
    },
    async close() {
      for (const e of edges.values()) e.stop();
      replication.stop();
      await Promise.all(
        instances.map(async (i) => {
          i.proc?.kill("SIGTERM");
          const exited = i.proc?.proc.exited;
          if (exited && !(await Promise.race([exited.then(() => true), Bun.sleep(5_000).then(() => false)]))) i.proc?.kill("SIGKILL");
          i.node.close();
        }),
      );
      for (const p of proxies) p.close();
      redis.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Lab = Awaited<ReturnType<typeof startLab>>;

export interface Seeded {
  /** User ids, the first ten the hot ones. */
  ids: number[];
  adminEmail: string;
  emailOf(id: number): string;
}

/** Users with posts and preferences, written straight into the migrated file (registering thousands over HTTP would take minutes of hashing). */
function seed(dbFile: string, n: number): Seeded {
  const db = new Database(dbFile);
  db.exec("PRAGMA busy_timeout = 5000");
  const hash = Bun.password.hashSync(LAB_PASSWORD, { algorithm: "argon2id" });
  const ids: number[] = [];
  const emailOf = (i: number) => `lab-user-${i}@example.com`;
  const insUser = db.prepare("INSERT INTO users (email, password_hash, full_name, is_admin) VALUES (?, ?, ?, ?) RETURNING id");
  const insPost = db.prepare("INSERT INTO posts (user_id, title, content) VALUES (?, ?, ?)");
  const insPref = db.prepare("INSERT INTO preferences (user_id, data) VALUES (?, ?)");
  const byIndex = new Map<number, number>();
  db.transaction(() => {
    for (let i = 0; i <= n; i++) {
      const row = insUser.get(i === 0 ? "lab-admin@example.com" : emailOf(i), hash, `Lab User ${i}`, i === 0 ? 1 : 0) as { id: number };
      if (i === 0) continue;
      ids.push(row.id);
      byIndex.set(row.id, i);
      for (let k = 0; k < 3; k++) insPost.run(row.id, `post ${k} of ${i}`, "x".repeat(200));
      insPref.run(row.id, JSON.stringify({ theme: "dark", lang: "en" }));
    }
  })();
  db.close();
  return { ids, adminEmail: "lab-admin@example.com", emailOf: (id) => emailOf(byIndex.get(id)!) };
}
