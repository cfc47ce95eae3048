// What every piece of the Redis queue shares: the connection, the key prefix, the options, one rate-limited
// warning, and the shapes of the deliveries the Lua scripts (../redis-scripts.ts) hand out.
import type { Redis } from "../../redis.ts";
import type { Logger } from "../../observability/logger.ts";
import { errorText } from "../failure.ts";
import type { QueueOptions } from "../options.ts";
import { RELEASE } from "../redis-scripts.ts";

export const GROUP = "workers";
export type StreamName = "db" | "any";
export const STREAMS: readonly StreamName[] = ["db", "any"];

/** A row returned by the start scripts: stream, entry id, job id, type, payload, retry_count, max_retries, delivery number. */
export type StartedRow = [StreamName, string, string, string, string, number, number, string];

/** One delivery being run here. `dlv` tells it from a later delivery of the same entry to this same worker. */
export interface Held {
  stream: StreamName;
  eid: string;
  jid: string;
  dlv: string;
  ctrl: AbortController;
  type: string;
  retry: number;
  maxRetries: number;
  startedAt: number;
}

export type DeliveryRef = Pick<Held, "stream" | "eid" | "jid" | "dlv">;

/** The key prefix of a queue built on `prefix`: every key of the queue starts with it. */
export const queueBase = (prefix: string) => `${prefix}jobs:`;

export interface QueueContext {
  readonly redis: Redis;
  readonly base: string;
  readonly o: QueueOptions;
  readonly log: Logger;
  /** A warning at most every few seconds, shared by all pieces: an unreachable Redis would otherwise flood the log. */
  logError(msg: string, err: unknown): void;
}

export function queueContext(redis: Redis, prefix: string, o: QueueOptions): QueueContext {
  const log = o.logger.child({ component: "jobs" });
  let lastErrorLog = 0;
  return {
    redis,
    base: queueBase(prefix),
    o,
    log,
    logError(msg, err) {
      const now = Date.now();
      if (now - lastErrorLog < 5_000) return;
      lastErrorLog = now;
      log.warn(msg, { error: errorText(err) });
    },
  };
}

export const isNoGroup = (err: unknown) => /NOGROUP/.test(String((err as Error)?.message ?? err));

export async function ensureGroups(ctx: QueueContext): Promise<void> {
  for (const s of STREAMS) {
    try {
      await ctx.redis.sendCommand(["XGROUP", "CREATE", ctx.base + "stream:" + s, GROUP, "0", "MKSTREAM"]);
    } catch (err) {
      if (!/BUSYGROUP/.test(String((err as Error).message))) throw err;
    }
  }
}

/** Hands deliveries back to their stream at once (not a retry): another worker, or this one, runs them later. */
export async function release(ctx: QueueContext, list: readonly DeliveryRef[]): Promise<void> {
  if (list.length === 0) return;
  await RELEASE.run(ctx.redis, [], [ctx.base, GROUP, ctx.o.consumerName, ...list.flatMap((h) => [h.stream, h.eid, h.jid, h.dlv])]);
}
