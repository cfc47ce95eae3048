// The one node-redis client of an instance (the cache, bus, queue, leases and rate limits share it;
// subscribers duplicate it). Commands fail fast while disconnected instead of queueing without bound, and
// every command has a deadline for its reply (boundCommands): a hung Redis costs a caller at most that.
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
export async function openRedis(
  url: string,
  logger: Logger,
  opts: { name?: string; waitMs?: number; commandTimeoutMs?: number } = {},
): Promise<Redis> {
  const raw = createClient({
    url,
    disableOfflineQueue: true,
    pingInterval: 10_000,
    // While Redis hangs, commands past their deadline still wait for a reply in node-redis's queue: bounded too.
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    socket: { connectTimeout: 2_000, reconnectStrategy: reconnectDelay },
  }) as unknown as Redis;
  const client = boundCommands(raw, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
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

/**
 * Races `p` against a deadline `ms` after the call went out. node-redis writes the commands it is given in a
 * setImmediate, so the deadline starts in one queued after it: a call made just before a long synchronous task
 * (a start-up's compiling, a burst of work) is not sent until the task ends, and a deadline counted from the call
 * would blame Redis for this process's own delay.
 */
function raceDeadline<T>(p: Promise<T>, ms: number, failure: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let settled = false;
  const timeout = new Promise<never>((_, reject) => {
    setImmediate(() => {
      if (!settled) timer = setTimeout(() => reject(failure()), ms);
    });
  });
  return Promise.race([p, timeout]).finally(() => {
    settled = true;
    clearTimeout(timer);
  });
}

/** Races a Redis call against a timeout, so a slow Redis costs a request at most `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what = "redis call"): Promise<T> {
  return raceDeadline(p, ms, () => new Error(`${what} timed out after ${ms} ms`));
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 1_000;
const MAX_QUEUED_COMMANDS = 20_000;

export class RedisCommandTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = "RedisCommandTimeout";
  }
}

/** Methods that are not commands (connection lifecycle, events): left as they are. */
const NOT_COMMANDS = new Set([
  "connect", "close", "quit", "disconnect", "destroy", "on", "once", "off", "addListener", "removeListener",
  "removeAllListeners", "emit", "listeners", "listenerCount", "ref", "unref", "setMaxListeners", "scanIterator",
]);

/** A blocking read waits for up to its BLOCK time before it answers: the deadline starts after that. */
function blockingMs(args: unknown[]): number {
  const list = Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
  const i = list.findIndex((a) => typeof a === "string" && a.toUpperCase() === "BLOCK");
  return i >= 0 ? Number(list[i + 1]) || 0 : 0;
}

/**
 * The client with a reply deadline on every command. node-redis's own `timeout` option stops counting once a
 * command is written to the socket, so against a paused Redis (SIGSTOP: the socket accepts, nothing answers)
 * it bounds nothing; this races each command's promise instead. Duplicates (subscribers, the queue's blocking
 * reader) and MULTI's exec are bounded the same way.
 */
export function boundCommands(client: Redis, ms: number): Redis {
  const wrap = (target: object, bind: object): ProxyHandler<object> => ({
    get(t, prop) {
      const v = Reflect.get(t, prop, t);
      if (typeof v !== "function" || typeof prop !== "string" || NOT_COMMANDS.has(prop)) {
        return typeof v === "function" ? v.bind(t) : v;
      }
      if (prop === "duplicate") return (...a: unknown[]) => boundCommands(v.apply(t, a), ms);
      if (prop === "multi" || prop === "MULTI") return (...a: unknown[]) => new Proxy(v.apply(t, a), wrap(target, bind));
      return (...a: unknown[]) => {
        const r = v.apply(t, a);
        if (!(r instanceof Promise)) return r === t ? new Proxy(t, wrap(target, bind)) : r;
        const limit = ms + blockingMs(a);
        const what = `redis ${prop === "sendCommand" ? String((a[0] as unknown[])?.[0] ?? prop) : prop}`;
        return raceDeadline(r, limit, () => new RedisCommandTimeout(what, limit));
      };
    },
  });
  return new Proxy(client, wrap(client, client)) as Redis;
}
