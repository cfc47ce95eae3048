// The one node-redis client of an instance (the cache, bus, queue, leases and rate limits share it;
// subscribers duplicate it). Commands fail fast while disconnected instead of queueing without bound.
import { createClient, type RedisClientType } from "redis";
import type { Logger } from "./observability/logger.ts";

/** The node-redis client type every Redis adapter of the platform takes. */
export type Redis = RedisClientType<any, any, any, any, any>;

export function reconnectDelay(retries: number): number {
  // 50 ms doubling to 2 s, with jitter so a fleet does not reconnect in step.
  const base = Math.min(2_000, 50 * 2 ** Math.min(retries, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * Opens the client and waits at most `waitMs` for the first connection. A Redis that is down at start
 * does not stop the instance: the client keeps reconnecting and the features degrade until it answers.
 */
export async function openRedis(url: string, logger: Logger, opts: { name?: string; waitMs?: number } = {}): Promise<Redis> {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    pingInterval: 10_000,
    socket: { connectTimeout: 2_000, reconnectStrategy: reconnectDelay },
  }) as unknown as Redis;
  let lastLog = 0;
  let wasReady = false;
  client.on("error", (err: Error) => {
    const now = Date.now();
    if (now - lastLog < 5_000) return;
    lastLog = now;
    logger.warn("redis connection error", { client: opts.name ?? "main", error: err.message });
  });
  client.on("ready", () => {
    if (wasReady) logger.info("redis reconnected", { client: opts.name ?? "main" });
    wasReady = true;
  });
  const connecting = client.connect().catch(() => undefined);
  await Promise.race([connecting, Bun.sleep(opts.waitMs ?? 2_000)]);
  if (!client.isReady) logger.warn("redis not reachable at start; continuing and retrying in the background", { client: opts.name ?? "main" });
  return client;
}

/** Closes a client without waiting on a dead connection. */
export async function closeRedis(client: Redis | null): Promise<void> {
  if (!client) return;
  try {
    if (client.isReady) await client.close();
    else client.destroy();
  } catch {
    client.destroy();
  }
}

/** Races a Redis call against a timeout, so a slow Redis costs a request at most `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what = "redis call"): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
