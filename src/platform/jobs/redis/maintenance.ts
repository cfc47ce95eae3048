// Slow housekeeping of the Redis queue, once a minute: failed jobs past their retention, finished markers the
// outbox never removed, and the consumers that dead instances left in the group.
import type { Redis } from "../../redis.ts";
import { DELETE_IDLE_CONSUMER } from "../redis-scripts.ts";
import { GROUP, STREAMS, type QueueContext, type StreamName } from "./context.ts";

const MAINTENANCE_EVERY_MS = 60_000;
/** A consumer with nothing pending and idle this long is a dead instance's: removed from the group. */
const DEAD_CONSUMER_IDLE_MS = 3_600_000;
/**
 * Finished markers of tracked jobs are removed by the outbox's reconciler; one it never removes (its row was
 * deleted, then the process died before the marker was) is trimmed after this long, or the failed retention if longer.
 * A row still waiting past that is relayed again: a rerun (at-least-once), never a loss.
 */
const FINISHED_MARKER_MAX_AGE_MS = 7 * 86_400_000;

/**
 * Removes another worker's consumer from a stream's group if, at that very moment, nothing is pending for
 * it and it has been idle for `minIdleMs` (one script: a listing read before may be stale). True when removed.
 */
export async function removeIdleConsumer(redis: Redis, base: string, stream: StreamName, name: string, minIdleMs: number): Promise<boolean> {
  const r = await DELETE_IDLE_CONSUMER.run(redis, [], [base + "stream:" + stream, GROUP, name, minIdleMs]);
  return Number(r) === 1;
}

export class Maintenance {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly ctx: QueueContext) {}

  start(): void {
    this.timer ??= setInterval(() => void this.run(), MAINTENANCE_EVERY_MS);
    void this.run();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async run(): Promise<void> {
    const { redis, base, o } = this.ctx;
    try {
      await redis.sendCommand(["ZREMRANGEBYSCORE", base + "failed", "-inf", String(Date.now() - o.retentionFailedMs)]);
      const markerAge = Math.max(FINISHED_MARKER_MAX_AGE_MS, o.retentionFailedMs, o.retentionCompletedMs);
      await redis.sendCommand(["ZREMRANGEBYSCORE", base + "finished", "-inf", String(Date.now() - markerAge)]);
      for (const s of STREAMS) {
        const key = base + "stream:" + s;
        const consumers = (await redis.sendCommand(["XINFO", "CONSUMERS", key, GROUP]).catch(() => [])) as unknown[];
        for (const raw of consumers) {
          // RESP3: a map per consumer; RESP2: a flat list of name, value pairs.
          let c: Record<string, unknown> = {};
          if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) c[String(raw[i])] = raw[i + 1];
          else if (raw instanceof Map) c = Object.fromEntries(raw);
          else c = raw as Record<string, unknown>;
          const name = String(c.name);
          if (name !== o.consumerName && Number(c.pending) === 0 && Number(c.idle) > DEAD_CONSUMER_IDLE_MS) {
            await removeIdleConsumer(redis, base, s, name, DEAD_CONSUMER_IDLE_MS);
          }
        }
      }
    } catch (err) {
      this.ctx.logError("job maintenance failed", err);
    }
  }
}
