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
  /** A heartbeat (its sender's own liveness probe): carries nothing for the cache. */
  h?: 1;
}

export interface BusHandlers {
  message(msg: BusMessage): void;
  /** Messages may have been missed (the subscription dropped, or came back): forget everything local. */
  reset(reason: string): void;
  /** The subscription is live or not; while it is not, L1 cannot be trusted. */
  state(up: boolean): void;
}

/** A message ready to be published by another call on the bus's client (l2.ts bumpTagsAndPublish). */
export interface BusCarrier {
  client: Redis;
  channel: string;
  raw: string;
}

export interface CacheBus {
  start(handlers: BusHandlers): Promise<void>;
  publish(msg: BusMessage): Promise<void>;
  /** The message for a Redis call that publishes it along with its own work; null (or absent) when publish() must. */
  carrier?(msg: BusMessage): BusCarrier | null;
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
  if (o.h !== undefined && o.h !== 1) return null;
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

export interface BusLiveness {
  /** How often this instance publishes a heartbeat to itself through Redis. */
  heartbeatMs: number;
  /**
   * L1 is trusted only while the newest heartbeat that came back was sent less than this long ago: everything
   * Redis relayed before it (other instances' invalidations included) has been received. Past it, L1 is bypassed;
   * when heartbeats come back, L1 is cleared first (what was missed in between is unknown).
   */
  deadlineMs: number;
  /** Called when heartbeats come back after the deadline had passed. */
  onRecovered?: () => void;
}

export class RedisBus implements CacheBus {
  private sub: Redis | null = null;
  private subscribed = false;
  private closed = false;
  up = false;
  /** The send time of the newest own heartbeat received back (performance.now()). */
  private lastEcho = 0;
  /** Past the deadline with no heartbeat back: L1 bypassed, publishes fail at once. */
  private silent = false;
  private beating = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly nonce = `bus-${crypto.randomUUID()}`;

  constructor(
    private readonly client: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly liveness: BusLiveness = { heartbeatMs: 250, deadlineMs: 1_000 },
  ) {}

  /** Live and proven so within the deadline. */
  get vouched(): boolean {
    return this.up && !this.silent;
  }

  private beat(handlers: BusHandlers): void {
    const now = performance.now();
    if (this.subscribed && !this.silent && this.lastEcho > 0 && now - this.lastEcho > this.liveness.deadlineMs) {
      this.silent = true;
      handlers.state(false);
      this.logger.warn("cache bus heartbeat overdue; L1 bypassed and bus messages held until it is back", {
        deadline_ms: this.liveness.deadlineMs,
      });
    }
    if (this.beating || !this.subscribed || this.closed) return;
    this.beating = true;
    const msg = JSON.stringify({ i: this.nonce, h: 1, s: now });
    this.client.publish(this.channel, msg).then(
      () => (this.beating = false),
      () => (this.beating = false),
    );
  }

  private echo(sentAt: number, handlers: BusHandlers): void {
    if (sentAt > this.lastEcho) this.lastEcho = sentAt;
    if (!this.silent || performance.now() - this.lastEcho > this.liveness.deadlineMs) return;
    this.silent = false;
    handlers.reset("bus heartbeat back");
    if (this.up) handlers.state(true);
    this.liveness.onRecovered?.();
    this.logger.info("cache bus heartbeat back; L1 cleared and trusted again");
  }

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
      handlers.state(!this.silent);
      this.logger.info("cache bus reconnected; L1 cleared");
    });
    const listener = (raw: string) => {
      const msg = parseBusMessage(raw);
      if (!msg) return;
      if (msg.h === 1) {
        if (msg.i === this.nonce) this.echo(Number((JSON.parse(raw) as { s?: unknown }).s) || 0, handlers);
        return;
      }
      handlers.message(msg);
    };
    this.timer = setInterval(() => this.beat(handlers), this.liveness.heartbeatMs);
    (this.timer as { unref?: () => void }).unref?.();
    const connect = async () => {
      await sub.connect();
      await sub.subscribe(this.channel, listener);
      this.subscribed = true;
      this.lastEcho = performance.now();
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
          this.lastEcho = performance.now();
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
    // While heartbeats do not come back, a write does not wait for a publish that cannot arrive: the caller
    // keeps the message and sends it again (two-tier.ts) once the bus is back.
    if (this.silent) throw new Error("cache bus silent (heartbeat overdue)");
    await withTimeout(this.client.publish(this.channel, JSON.stringify(msg)), this.timeoutMs, "cache bus publish");
  }

  /** Null while silent, for the reason publish() fails then. */
  carrier(msg: BusMessage): BusCarrier | null {
    return this.silent ? null : { client: this.client, channel: this.channel, raw: JSON.stringify(msg) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    clearInterval(this.timer);
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
