// The two-tier cache: L1 (in-process LRU) in front of L2 (Redis), kept coherent between instances by the
// bus, with single flight, serve-stale on loader failure, and tag invalidation.
//
// Tags are version tokens. Each tag (e.g. `user:42`) has a token in Redis; an L2 entry records the tokens of
// its tags at the time its loader started, and is valid only while they are unchanged (one MGET reads the
// entry and the tokens together). invalidateTags() writes new tokens, which orphans every page and size ever
// cached under the tag without enumerating them, and makes a late write from a loader that read the database
// before the change harmless: its entry carries the old token. L1 keeps a local tag -> keys index instead,
// and drops entries when this instance invalidates or when the bus says another one did.
//
// LiteFS: the primary puts its txid in the new token and in the bus message. A replica fills neither tier
// for a tag whose token (or message) names a txid its own database has not reached yet.
//
// This class keeps L1 and composes the pieces that do each of those jobs: read-through.ts (the miss path, with
// single flight), invalidation-tracker.ts (which loads may fill), tag-versions.ts (tokens and their retry),
// invalidation-batch.ts (concurrent invalidations in one call), retrying-bus.ts (owed bus messages),
// replica-gate.ts (LiteFS).
import type { Logger } from "../observability/logger.ts";
import type { PositionReader } from "../cluster/position.ts";
import type { BusMessage, CacheBus } from "./bus.ts";
import { InvalidationBatch } from "./invalidation-batch.ts";
import { InvalidationTracker } from "./invalidation-tracker.ts";
import type { RedisL2 } from "./l2.ts";
import { alwaysL2, type L2Policy } from "./l2-policy.ts";
import { Lru } from "./lru.ts";
import { throttledWarn, type ThrottledWarn } from "../observability/throttled-log.ts";
import type { Cache, CacheResult, CacheSetOptions, CacheStats } from "./port.ts";
import { ReadThrough } from "./read-through.ts";
import { ReplicaGate } from "./replica-gate.ts";
import { RetryingBus } from "./retrying-bus.ts";
import { TagVersions } from "./tag-versions.ts";

export interface TwoTierOptions {
  instanceId: string;
  logger: Logger;
  l1: { enabled: boolean; maxItems: number; maxBytes: number; maxEntryBytes: number };
  ttlSeconds: number;
  staleGraceSeconds: number;
  /** Null in the no-Redis mode: L1 alone. */
  l2: RedisL2 | null;
  bus: CacheBus;
  /** LiteFS position and role; absent (or noPosition) off LiteFS. */
  position?: PositionReader;
  isPrimary?: () => boolean;
  /** Whether an L1 miss asks the L2 first (l2-policy.ts); always, when absent. */
  l2Policy?: L2Policy;
  /** How long a replica waits for its database to reach a message's txid before marking its tags (ms). */
  catchUpWaitMs?: number;
  /** Keys + tags of failed bus messages kept for the retry; beyond it the retry clears every L1 (default 10,000). */
  maxUnsent?: number;
  /** False: with Redis too, each invalidation is its own call, however many are on their way (a bench's baseline). */
  coalesceInvalidations?: boolean;
  /** Which loads may still fill after an invalidation; its own, bounded at 10,000 keys/tags, when absent. */
  invalidations?: InvalidationTracker;
}

const EMPTY: readonly string[] = [];
export class TwoTierCache implements Cache {
  private readonly lru: Lru;
  private readonly l1Enabled: boolean;
  /** L1 is read and filled only while the bus is live (else another instance's change could be missed). */
  private l1Usable: boolean;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly reader: ReadThrough;
  private readonly tracker: InvalidationTracker;
  private readonly gate: ReplicaGate;
  private readonly tags: TagVersions;
  private readonly out: RetryingBus;
  private readonly batch: InvalidationBatch | null;
  private retryTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly counters = { hits: 0, misses: 0, received: 0 };

  /** An outage fails every write's invalidation: one warning line per reason per interval. */
  private readonly warn: ThrottledWarn;

  constructor(private readonly opts: TwoTierOptions) {
    this.warn = throttledWarn(opts.logger);
    this.lru = new Lru(opts.l1);
    this.l1Enabled = opts.l1.enabled;
    this.l1Usable = false;
    this.ttlMs = opts.ttlSeconds * 1000;
    this.graceMs = opts.staleGraceSeconds * 1000;
    this.tracker = opts.invalidations ?? new InvalidationTracker();
    this.gate = new ReplicaGate({
      position: opts.position,
      isPrimary: opts.isPrimary,
      catchUpWaitMs: opts.catchUpWaitMs,
      logger: opts.logger,
      drop: (keys, tags) => this.dropLocal(keys, tags),
      reset: (reason) => this.resetLocal(reason),
    });
    const onOwed = () => this.scheduleRetry();
    this.out = new RetryingBus({ bus: opts.bus, instanceId: opts.instanceId, logger: opts.logger, warn: this.warn, maxUnsent: opts.maxUnsent, onOwed });
    this.tags = new TagVersions({
      l2: opts.l2,
      logger: opts.logger,
      warn: this.warn,
      stampTxid: () => this.gate.stampTxid(),
      onFailed: onOwed,
      publishTags: (tags) => this.out.publish({ i: opts.instanceId, t: tags }),
    });
    const l2 = opts.l2;
    this.batch =
      l2 !== null && opts.coalesceInvalidations !== false
        ? new InvalidationBatch((tags, txid) => this.sendInvalidation(tags, txid), () => l2.effectiveTimeoutMs)
        : null;
    this.reader = new ReadThrough({
      l2: opts.l2,
      policy: opts.l2Policy ?? alwaysL2,
      tracker: this.tracker,
      tags: this.tags,
      ttlMs: this.ttlMs,
      graceMs: this.graceMs,
      staleL1: (key, now) => (this.l1Usable ? this.lru.stale(key, now) : undefined),
      fillL1: (key, value, json, tags, expiresAt, staleUntil) => this.fillL1(key, value, json, tags, expiresAt, staleUntil),
      mayFill: (key, tags, gen, tokens) => this.mayFill(key, tags, gen, tokens),
    });
  }

  /** Subscribes to the bus. L1 stays off until the subscription is live. */
  async start(): Promise<void> {
    await this.opts.bus.start({
      message: (m) => this.onMessage(m),
      reset: (reason) => this.resetLocal(reason),
      state: (up) => {
        this.l1Usable = this.l1Enabled && up && !this.closed;
      },
    });
  }

  async getOrSet<T>(key: string, loader: () => Promise<T>, opts?: CacheSetOptions): Promise<CacheResult<T>> {
    if (this.l1Usable) {
      const e = this.lru.get(key, Date.now());
      if (e !== undefined) {
        this.counters.hits++;
        return e.hit as CacheResult<T>;
      }
      this.counters.misses++;
    }
    return this.reader.load(key, loader, opts);
  }

  private fillL1(key: string, value: unknown, json: string, tags: readonly string[], expiresAt: number, staleUntil: number): void {
    if (this.l1Usable) this.lru.set(key, value, json, tags, expiresAt, staleUntil);
  }

  /** Nothing invalidated the key or its tags since the load began, and (on a LiteFS replica) the data is current. */
  private mayFill(key: string, tags: readonly string[], gen: number, tokens: readonly string[] | undefined): boolean {
    if (this.closed) return false;
    if (!this.tracker.untouchedSince(key, tags, gen)) return false;
    return this.gate.allowsFill(key, tags, tokens);
  }

  /** L1 only, as getOrSet reads it: a cached null (the services' "not found" marker) is a hit too. */
  peek(key: string): CacheResult<unknown> | undefined {
    if (!this.l1Usable) return undefined;
    const e = this.lru.get(key, Date.now());
    if (e === undefined) return undefined;
    this.counters.hits++;
    return e.hit;
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (this.l1Usable) {
      const e = this.lru.get(key, Date.now());
      if (e !== undefined) {
        this.counters.hits++;
        return e.value as T;
      }
      this.counters.misses++;
    }
    const l2 = this.opts.l2;
    if (l2 === null) return undefined;
    const e = await l2.readUntagged(key);
    if (e === undefined || this.tags.hasPendingBump(e.tags)) return undefined;
    return e.value as T;
  }

  async set<T>(key: string, value: T, opts?: CacheSetOptions): Promise<void> {
    const gen = this.tracker.current;
    this.tracker.begin(gen);
    try {
      await this.setTiers(key, value, gen, opts);
    } finally {
      this.tracker.end(gen);
    }
  }

  private async setTiers(key: string, value: unknown, gen: number, opts?: CacheSetOptions): Promise<void> {
    const tags = opts?.tags ?? EMPTY;
    const json = JSON.stringify(value) ?? "null";
    const expiresAt = Date.now() + (opts?.ttl !== undefined ? opts.ttl * 1000 : this.ttlMs);
    const staleUntil = expiresAt + this.graceMs;
    const l2 = this.opts.l2;
    let tokens: string[] | undefined;
    if (l2 !== null && !this.tags.hasPendingBump(tags)) tokens = await l2.tokens(tags);
    if (!this.mayFill(key, tags, gen, tokens)) return;
    // Other instances may hold an older value of this key.
    await this.delete([key]);
    this.fillL1(key, value, json, tags, expiresAt, staleUntil);
    if (l2 !== null && tokens !== undefined) await l2.write(key, json, tags, tokens, expiresAt, staleUntil);
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    this.dropLocal(keys, EMPTY);
    const l2 = this.opts.l2;
    if (l2 !== null) await l2.delete(keys);
    await this.out.publish({ i: this.opts.instanceId, k: [...keys] });
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    this.dropLocal(EMPTY, tags);
    const txid = this.gate.stampTxid();
    // With Redis, invalidations made while one is on its way go together in the next call (invalidation-batch.ts).
    if (this.batch !== null) return this.batch.add(tags, txid);
    return this.sendInvalidation(tags, txid);
  }

  /** Tokens and bus message for tags invalidated here (already dropped from L1); failures are owed and retried. */
  private async sendInvalidation(tags: readonly string[], txid: string | null): Promise<void> {
    const msg: BusMessage = { i: this.opts.instanceId, t: [...tags] };
    if (txid !== null) msg.x = txid;
    // With Redis, the new tokens and the message go in one round trip (the bus message rides on the bump).
    const sent = await this.tags.bump(tags, txid, this.out.carrier(msg));
    if (sent === "sent") this.out.carried();
    else if (sent === "failed") this.out.carryFailed(msg);
    else await this.out.publish(msg);
  }

  /**
   * Until the failed bumps and bus messages are delivered, retry on a timer (bumps also on every read of
   * their tags).
   */
  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setInterval(() => {
      if (this.closed || (!this.tags.owed && !this.out.owed)) {
        clearInterval(this.retryTimer);
        this.retryTimer = undefined;
        return;
      }
      void this.tags.retry();
      void this.out.retry();
    }, 250);
    (this.retryTimer as { unref?: () => void }).unref?.();
  }

  /** Drops keys/tags from L1 and makes running loads for them skip their fill. */
  private dropLocal(keys: readonly string[], tags: readonly string[]): void {
    for (const k of keys) this.lru.delete(k);
    if (tags.length > 0) this.lru.deleteTags(tags);
    this.tracker.invalidated(keys, tags);
  }

  private onMessage(m: BusMessage): void {
    if (m.i === this.opts.instanceId || this.closed) return;
    this.counters.received++;
    const keys = m.k ?? EMPTY;
    const tags = m.t ?? EMPTY;
    if (m.r === 1) this.resetLocal(`reset by ${m.i}`);
    else this.dropLocal(keys, tags);
    this.gate.received(m, keys, tags);
  }

  private resetLocal(reason: string): void {
    this.lru.clear();
    this.tracker.cleared();
    this.opts.logger.debug("cache L1 cleared", { reason });
  }

  get owed(): boolean {
    return this.out.owed || this.tags.owed;
  }

  get l1Live(): boolean {
    return this.l1Usable;
  }

  stats(): CacheStats {
    const { hits, misses, received } = this.counters;
    const published = this.out.published;
    const l2 = this.opts.l2;
    return {
      l1: {
        size: this.lru.size,
        max_items: this.l1Enabled ? this.opts.l1.maxItems : 0,
        hits,
        misses,
        evictions: this.lru.evictions,
        hit_ratio: hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 10_000) / 10_000,
      },
      l2: l2 === null ? { available: false, hits: 0, misses: 0, errors: 0 } : { available: l2.available, ...l2.stats },
      bus: { published, received },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.l1Usable = false;
    this.out.close();
    this.gate.close();
    this.lru.clear();
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    this.opts.l2Policy?.stop();
    await this.opts.bus.close();
  }
}
