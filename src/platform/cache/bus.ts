// The invalidation bus between instances. Redis adapter: PUBLISH on the shared client, SUBSCRIBE on its
// own duplicated connection. In-process adapter for the no-Redis mode (and for tests that share one).
import type { Redis } from "../redis.ts";
import type { Logger } from "../observability/logger.ts";
import { withTimeout } from "../redis.ts";
import { TXID_RE } from "../cluster/position.ts";

export interface BusMessage {
  /** Sender's instance id; a receiver ignores its own messages. */
  i: string;
  /** Cache keys to drop. */
  k?: string[];
  /** Tags to drop. */
  t?: string[];
  /** LiteFS txid (16 hex) of the sender's database when it sent this, if it is the primary on LiteFS. */
  x?: string;
  /** Drop every L1 entry: the sender lost track of what it owed the others (too many unsent messages). */
  r?: 1;
}

export interface BusHandlers {
  message(msg: BusMessage): void;
  /** Messages may have been missed (the subscription dropped, or came back): forget everything local. */
  reset(reason: string): void;
  /** The subscription is live or not; while it is not, L1 cannot be trusted. */
  state(up: boolean): void;
}

export interface CacheBus {
  start(handlers: BusHandlers): Promise<void>;
  publish(msg: BusMessage): Promise<void>;
  readonly up: boolean;
  close(): Promise<void>;
}

/** Validates a decoded message; anything else on the channel is ignored. */
export function parseBusMessage(raw: string): BusMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof m !== "object" || m === null) return null;
  const o = m as Record<string, unknown>;
  const strings = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === "string"));
  if (typeof o.i !== "string" || !strings(o.k) || !strings(o.t)) return null;
  if (o.x !== undefined && !(typeof o.x === "string" && TXID_RE.test(o.x))) return null;
  if (o.r !== undefined && o.r !== 1) return null;
  return o as unknown as BusMessage;
}

/** Delivers to every other cache started on the same instance of this class (one process). */
export class MemoryBus implements CacheBus {
  private readonly members = new Set<BusHandlers>();
  readonly up = true;
  async start(handlers: BusHandlers): Promise<void> {
    this.members.add(handlers);
    handlers.state(true);
  }
  async publish(msg: BusMessage): Promise<void> {
    const raw = JSON.stringify(msg);
    for (const h of this.members) {
      const copy = parseBusMessage(raw);
      if (copy) h.message(copy);
    }
  }
  async close(): Promise<void> {
    this.members.clear();
  }
}

export class RedisBus implements CacheBus {
  private sub: Redis | null = null;
  private subscribed = false;
  private closed = false;
  up = false;

  constructor(
    private readonly client: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  async start(handlers: BusHandlers): Promise<void> {
    const sub = this.client.duplicate() as Redis;
    this.sub = sub;
    const down = (reason: string) => {
      if (this.closed || !this.up) return;
      this.up = false;
      handlers.state(false);
      handlers.reset(reason);
      this.logger.warn("cache bus disconnected; L1 bypassed until it is back", { reason });
    };
    sub.on("error", () => {
      if (!sub.isReady) down("error");
    });
    sub.on("reconnecting", () => down("reconnecting"));
    sub.on("end", () => down("end"));
    // node-redis resubscribes before it emits "ready" again, so a ready after the first subscribe means the
    // channel is live again; whatever was published in between is lost, hence the reset.
    sub.on("ready", () => {
      if (this.closed || !this.subscribed || this.up) return;
      this.up = true;
      handlers.reset("bus reconnected");
      handlers.state(true);
      this.logger.info("cache bus reconnected; L1 cleared");
    });
    const listener = (raw: string) => {
      const msg = parseBusMessage(raw);
      if (msg) handlers.message(msg);
    };
    const connect = async () => {
      await sub.connect();
      await sub.subscribe(this.channel, listener);
      this.subscribed = true;
      if (sub.isReady && !this.closed) {
        this.up = true;
        handlers.state(true);
      }
    };
    // A Redis that is down at start must not hold the start: keep trying in the background.
    const attempt = connect().catch((err: Error) => {
      this.logger.warn("cache bus could not subscribe at start; L1 bypassed until it does", { error: err.message });
      if (!this.subscribed && !this.closed) this.retrySubscribe(sub, listener, handlers);
    });
    await Promise.race([attempt, Bun.sleep(2_000)]);
  }

  private retrySubscribe(sub: Redis, listener: (raw: string) => void, handlers: BusHandlers): void {
    const tick = async () => {
      if (this.closed || this.subscribed) return;
      try {
        if (!sub.isOpen) await sub.connect().catch(() => undefined);
        if (sub.isReady) {
          await sub.subscribe(this.channel, listener);
          this.subscribed = true;
          this.up = true;
          handlers.reset("bus subscribed");
          handlers.state(true);
          return;
        }
      } catch {
        // try again below
      }
      setTimeout(tick, 500).unref?.();
    };
    setTimeout(tick, 500).unref?.();
  }

  async publish(msg: BusMessage): Promise<void> {
    await withTimeout(this.client.publish(this.channel, JSON.stringify(msg)), this.timeoutMs, "cache bus publish");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    const sub = this.sub;
    this.sub = null;
    if (!sub) return;
    try {
      if (sub.isReady) await withTimeout(sub.close(), 1_000, "cache bus close");
      else sub.destroy();
    } catch {
      try {
        sub.destroy();
      } catch {
        // already gone
      }
    }
  }
}
