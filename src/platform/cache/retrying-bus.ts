// Publishing on the cache bus without losing a message: what fails is merged into one owed message and sent
// again until it goes through; past a bound, the owed message tells the others to clear all of L1.
import type { Logger } from "../observability/logger.ts";
import type { ThrottledWarn } from "../observability/throttled-log.ts";
import type { BusCarrier, BusMessage, CacheBus } from "./bus.ts";

const EMPTY: readonly string[] = [];
const MAX_UNSENT = 10_000;

export interface RetryingBusOptions {
  bus: CacheBus;
  instanceId: string;
  logger: Logger;
  warn: ThrottledWarn;
  /** Keys + tags of failed messages kept for the retry; beyond it the retry clears every L1 (default 10,000). */
  maxUnsent?: number;
  /** A message is owed: retry on a timer until it goes through. */
  onOwed: () => void;
}

export class RetryingBus {
  /** What failed to reach the bus, merged into one message and sent again until it goes through. */
  private readonly unsent = { keys: new Set<string>(), tags: new Set<string>(), txid: undefined as string | undefined, all: false };
  private publishing = false;
  private closed = false;
  published = 0;

  constructor(private readonly o: RetryingBusOptions) {}

  async publish(msg: BusMessage): Promise<void> {
    try {
      await this.o.bus.publish(msg);
      this.published++;
    } catch (err) {
      this.o.warn("cache bus publish failed; retried until it goes through", { error: (err as Error).message });
      this.owe(msg);
    }
  }

  /** The message for a call that publishes it along with other work (a tag bump), or null: publish() it. */
  carrier(msg: BusMessage): BusCarrier | null {
    return this.o.bus.carrier?.(msg) ?? null;
  }

  /** What carrier() made was published. */
  carried(): void {
    this.published++;
  }

  /** The call that carried the message failed: owed as if publish() had failed. */
  carryFailed(msg: BusMessage): void {
    this.o.warn("cache bus publish failed; retried until it goes through", { error: "the call carrying it failed" });
    this.owe(msg);
  }

  get owed(): boolean {
    const u = this.unsent;
    return u.all || u.keys.size > 0 || u.tags.size > 0;
  }

  async retry(): Promise<void> {
    if (this.publishing || this.closed || !this.owed) return;
    this.publishing = true;
    // Taken out before the await: a message that fails meanwhile is owed anew, and this one is owed again if it fails.
    const u = this.unsent;
    const msg: BusMessage = { i: this.o.instanceId };
    if (u.all) msg.r = 1;
    else {
      if (u.keys.size > 0) msg.k = [...u.keys];
      if (u.tags.size > 0) msg.t = [...u.tags];
    }
    if (u.txid !== undefined) msg.x = u.txid;
    u.keys.clear();
    u.tags.clear();
    u.all = false;
    u.txid = undefined;
    try {
      await this.o.bus.publish(msg);
      this.published++;
      this.o.logger.info("cache: unsent bus message delivered", { keys: msg.k?.length ?? 0, tags: msg.t?.length ?? 0, all: msg.r === 1 });
    } catch {
      this.owe(msg);
    } finally {
      this.publishing = false;
    }
  }

  /** Owes nothing more: the cache is closing. */
  close(): void {
    this.closed = true;
  }

  /** Keeps a failed message for the retry; past the bound, the retry tells the others to clear all of L1. */
  private owe(msg: BusMessage): void {
    if (this.closed) return;
    const u = this.unsent;
    const max = this.o.maxUnsent ?? MAX_UNSENT;
    if (msg.r === 1) u.all = true;
    if (!u.all) {
      for (const k of msg.k ?? EMPTY) u.keys.add(k);
      for (const t of msg.t ?? EMPTY) u.tags.add(t);
      if (u.keys.size + u.tags.size > max) u.all = true;
    }
    if (u.all) {
      u.keys.clear();
      u.tags.clear();
    }
    // Fixed-width hex: the greatest txid is the latest; a replica waits for it before filling those entries.
    if (msg.x !== undefined && (u.txid === undefined || msg.x > u.txid)) u.txid = msg.x;
    this.o.onOwed();
  }
}
