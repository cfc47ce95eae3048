// Tag invalidation as new version tokens in Redis (see two-tier.ts for why tokens): writes them, and keeps the
// tags whose bump failed while Redis was unreachable, so L2 is not trusted for them until a retry lands.
import type { Logger } from "../observability/logger.ts";
import type { ThrottledWarn } from "../observability/throttled-log.ts";
import type { BusCarrier } from "./bus.ts";
import type { RedisL2 } from "./l2.ts";

/** Tag tokens live longer than any entry can (TTL and grace are each capped at 30 days by the config). */
const TAG_TOKEN_TTL_MS = 62 * 86_400_000;
/** Bumps that failed while Redis was unreachable, retried before this instance trusts L2 again; bounded. */
const MAX_PENDING_BUMPS = 10_000;

export interface TagVersionsOptions {
  l2: RedisL2 | null;
  logger: Logger;
  warn: ThrottledWarn;
  /** The txid a token made now carries (the LiteFS primary's), or null. */
  stampTxid: () => string | null;
  /** A bump failed: retry on a timer until it lands. */
  onFailed: () => void;
  /** Tells the other instances once a retried bump has landed. */
  publishTags: (tags: string[]) => Promise<void>;
}

export class TagVersions {
  /**
   * Tags whose bump has not reached Redis yet, each with the number of its latest failed bump: a retry that
   * succeeds clears only the tags nobody failed to bump again while it was in flight.
   */
  private readonly pendingBumps = new Map<string, number>();
  private bumpSeq = 0;
  private seq = 0;
  private readonly tokenSalt = crypto.randomUUID().slice(0, 8);
  private retrying = false;

  constructor(private readonly o: TagVersionsOptions) {}

  /** Some bump still has to reach Redis. */
  get owed(): boolean {
    return this.pendingBumps.size > 0;
  }

  /**
   * Gives the tags new tokens; a failure is kept for the retry. With a carrier, the bus message goes in the same
   * call: "sent" (both landed), "failed" (neither can be assumed: the caller owes the message too), "alone"
   * (the message was not sent: the caller publishes it).
   */
  async bump(tags: readonly string[], txid: string | null, carrier: BusCarrier | null = null): Promise<"sent" | "failed" | "alone"> {
    const l2 = this.o.l2;
    if (l2 === null) return "alone";
    const token = this.newToken(txid);
    if (carrier !== null && l2.canCarry(carrier)) {
      const r = await l2.bumpTagsAndPublish(tags, token, TAG_TOKEN_TTL_MS, carrier);
      if (r === "ok") return "sent";
      this.failed(tags);
      return r === "failed" ? "failed" : "alone";
    }
    if (!(await l2.bumpTags(tags, token, TAG_TOKEN_TTL_MS))) this.failed(tags);
    return "alone";
  }

  private failed(tags: readonly string[]): void {
    for (const t of tags) if (this.pendingBumps.size < MAX_PENDING_BUMPS || this.pendingBumps.has(t)) this.pendingBumps.set(t, ++this.bumpSeq);
    this.o.warn("cache: tag invalidation did not reach Redis; retried when it is back", { tags: tags.length });
    this.o.onFailed();
  }

  /** True when one of the tags has a bump owed: L2's entries for it cannot be trusted (a retry is started). */
  hasPendingBump(tags: readonly string[]): boolean {
    if (this.pendingBumps.size === 0) return false;
    void this.retry();
    for (const t of tags) if (this.pendingBumps.has(t)) return true;
    return false;
  }

  async retry(): Promise<void> {
    const l2 = this.o.l2;
    if (this.retrying || l2 === null || !l2.available || this.pendingBumps.size === 0) return;
    this.retrying = true;
    try {
      const snapshot = [...this.pendingBumps];
      const tags = snapshot.map(([t]) => t);
      if (await l2.bumpTags(tags, this.newToken(this.o.stampTxid()), TAG_TOKEN_TTL_MS)) {
        // A bump of one of these tags that failed during the await (e.g. skipped because this retry was the
        // breaker's trial call) came after the token just written: it stays pending and is sent again.
        for (const [t, seq] of snapshot) if (this.pendingBumps.get(t) === seq) this.pendingBumps.delete(t);
        await this.o.publishTags(tags);
        this.o.logger.info("cache: pending tag invalidations delivered", { tags: tags.length });
      }
    } finally {
      this.retrying = false;
    }
  }

  private newToken(txid: string | null): string {
    return `${txid ?? "-"}.${this.tokenSalt}${(++this.seq).toString(36)}`;
  }
}
