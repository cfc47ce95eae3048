// `bun run cluster -- --instances N`: N processes of `bun run src/index.ts` on one port (reusePort), one SQLite
// file and one Redis, each with its own INSTANCE_ID and METRICS_PORT (base + i). The parent migrates first,
// starts instance 1 alone (it ensures the admin), then the others; Ctrl-C or SIGTERM stops them all gracefully.
import type { Subprocess } from "bun";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { openDatabase, type Database } from "./platform/db/client.ts";
import { instances } from "./platform/db/schema/index.ts";
import { runMigrations } from "./platform/db/migrate.ts";
import { createLogger, type Logger } from "./platform/observability/logger.ts";
import { localHost } from "./main/options.ts";

const START_TIMEOUT_MS = 30_000;

function parseInstances(argv: readonly string[], fallback: number): number {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--instances" || a === "-n") value = argv[i + 1];
    else if (a.startsWith("--instances=")) value = a.slice("--instances=".length);
  }
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) {
    throw new ConfigError("--instances", `expected an integer between 1 and 64, got "${value}"`);
  }
  return Number(value);
}

interface Child {
  id: string;
  proc: Subprocess<"ignore", "inherit", "inherit">;
  launchedAt: string;
}

function spawnChild(config: Config, index: number): Child {
  const id = `${config.INSTANCE_ID}-${index}`;
  const env: Record<string, string | undefined> = {
    // The children read the same environment as this process (config.ts validates it there too), plus:
    ...process.env,
    REUSE_PORT: "true",
    INSTANCE_ID: id,
    METRICS_PORT: config.METRICS_PORT === 0 ? "0" : String(config.METRICS_PORT + index - 1),
  };
  const launchedAt = new Date().toISOString();
  // Detached (own process group): a terminal's Ctrl-C reaches only this parent, which then sends each child
  // exactly one SIGTERM; a second signal to a child would make it exit without draining.
  const proc = Bun.spawn([process.execPath, "run", join(import.meta.dir, "index.ts")], {
    env,
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
    detached: true,
  });
  return { id, proc, launchedAt };
}

/** Resolves once the child's heartbeat row is in the table (it registers right after it listens). */
async function waitRegistered(database: Database, child: Child): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`instance ${child.id} exited during start (code ${child.proc.exitCode ?? child.proc.signalCode})`);
    }
    const rows = await database.db.select({ startedAt: instances.startedAt }).from(instances).where(eq(instances.id, child.id));
    if (rows[0] && rows[0].startedAt >= child.launchedAt) return;
    await Bun.sleep(100);
  }
  throw new Error(`instance ${child.id} did not register within ${START_TIMEOUT_MS} ms`);
}

async function main(): Promise<number> {
  let config: Config;
  let count: number;
  try {
    config = loadConfig();
    count = parseInstances(process.argv.slice(2), Math.max(2, availableParallelism()));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const logger: Logger = createLogger(config.LOG_LEVEL, { component: "cluster" });

  // One migrator, before anyone serves: the children then find nothing left to apply.
  const database = await openDatabase(config.DATABASE_URL, { setWal: true });
  await runMigrations(database);
  logger.info("migrations applied", { database: config.DATABASE_URL });

  const children: Child[] = [];
  let stopping = false;
  let signals = 0;
  const alive = () => children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);

  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of alive()) c.proc.kill(signal);
  };
  let firstSignalAt = 0;
  const onSignal = (signal: string) => {
    // One Ctrl-C can arrive twice (from the terminal's process group and forwarded by `bun run`): only a
    // signal more than a second after the first one means "stop now".
    if (signals > 0 && Date.now() - firstSignalAt < 1_000) return;
    if (signals === 0) firstSignalAt = Date.now();
    if (++signals > 1) {
      logger.warn("second signal: killing the instances now", { signal });
      stopAll("SIGKILL");
      process.exit(1);
    }
    stopping = true;
    logger.info("stopping the cluster", { signal, instances: alive().map((c) => c.id) });
    stopAll("SIGTERM");
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  // Last resort if this process dies on an error: never leave detached children behind.
  process.on("exit", () => stopAll("SIGKILL"));

  const exits = new Map<string, Promise<number>>();
  const launch = (i: number) => {
    const child = spawnChild(config, i);
    children.push(child);
    exits.set(
      child.id,
      child.proc.exited.then((code) => {
        const clean = code === 0 && child.proc.signalCode === null;
        if (!stopping && !clean) logger.error("instance exited unexpectedly", { instance: child.id, code, signal: child.proc.signalCode });
        else if (!stopping) logger.info("instance stopped", { instance: child.id });
        return code;
      }),
    );
    return child;
  };

  try {
    // Instance 1 alone first (it ensures the admin account), then the rest together.
    await waitRegistered(database, launch(1));
    const rest = Array.from({ length: count - 1 }, (_, k) => launch(k + 2));
    await Promise.all(rest.map((c) => waitRegistered(database, c)));
    if (!stopping) {
      const host = localHost(config);
      logger.info("cluster up", {
        instances: children.map((c) => c.id),
        url: `http://${host}:${config.PORT}`,
        metrics: config.METRICS_ENABLED ? children.map((_, i) => (config.METRICS_PORT === 0 ? 0 : config.METRICS_PORT + i)) : [],
      });
    }
  } catch (err) {
    if (!stopping) {
      // On stderr whatever LOG_LEVEL says, as an instance's own failed start is (src/index.ts).
      console.error(`cluster start failed: ${(err as Error).message}; stopping the instances`);
      stopping = true;
      stopAll("SIGTERM");
    }
  } finally {
    database.close();
  }

  const codes = await Promise.all(children.map((c) => exits.get(c.id)!));
  // 0 when every instance stopped cleanly, whoever asked it to (this runner's signal, or one sent to an instance).
  const clean = codes.every((c, i) => c === 0 && children[i]!.proc.signalCode === null);
  logger.info("cluster stopped", { exit_codes: Object.fromEntries(children.map((c, i) => [c.id, codes[i]])) });
  return clean ? 0 : 1;
}

process.exit(await main());
