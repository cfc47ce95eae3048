// A private redis-server on a spare loopback port, for tests and the chaos run that kill, pause or wipe Redis
// (never the shared one). No persistence: a restart comes back empty, as a Redis without a volume does.
import type { Subprocess } from "bun";
import { createClient } from "redis";
import { freePort } from "./process.ts";
import { waitUntil } from "./wait.ts";

export interface PrivateRedis {
  port: number;
  url: string;
  /** FLUSHALL on this private server. */
  wipe(): Promise<void>;
  /** SIGSTOP: the process hangs, its sockets stay open (what a stalled host looks like). */
  pause(): void;
  resume(): void;
  /** SIGKILL, then a fresh empty server on the same port. */
  restart(): Promise<void>;
  /** SIGKILL only (revive() brings a fresh empty one back on the same port). */
  kill(): Promise<void>;
  revive(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const ping = async () => {
    const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    c.on("error", () => undefined);
    try {
      await c.connect();
      await c.ping();
      await c.close();
      return true;
    } catch (err) {
      c.destroy();
      throw err;
    }
  };
  await waitUntil(ping, { timeoutMs, intervalMs: 50, retryErrors: true }, `redis-server at ${url} to answer`);
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let proc: Subprocess;
  const spawn = async () => {
    proc = Bun.spawn(
      ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
      { stdin: "ignore", stdout: "ignore", stderr: "ignore" },
    );
    await waitForPing(url);
  };
  await spawn();
  return {
    port,
    url,
    async wipe() {
      const c = createClient({ url });
      c.on("error", () => undefined);
      await c.connect();
      await c.flushAll();
      await c.close();
    },
    pause: () => proc.kill("SIGSTOP"),
    resume: () => proc.kill("SIGCONT"),
    async restart() {
      proc.kill("SIGKILL");
      await proc.exited;
      await spawn();
    },
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
    revive: spawn,
    async stop() {
      proc.kill("SIGCONT");
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
