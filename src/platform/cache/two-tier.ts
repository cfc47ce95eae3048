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
import type { Logger } from "../observability/logger.ts";
import type { PositionReader } from "../cluster/position.ts";
import type { BusMessage, CacheBus } from "./bus.ts";
import type { L2Entry, RedisL2 } from "./l2.ts";
import { alwaysL2, type L2Policy } from "./l2-policy.ts";
import { Lru } from "./lru.ts";
import { throttledWarn, type ThrottledWarn } from "../observability/throttled-log.ts";
import type { Cache, CacheResult, CacheSetOptions, CacheStats } from "./port.ts";

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
  /** Key/tag invalidations remembered for running loads; beyond it they are pruned or all loads refused (default 10,000). */
  maxTrackedInvalidations?: number;
}

const EMPTY: readonly string[] = [];
/** Tag tokens live longer than any entry can (TTL and grace are each capped at 30 days by the config). */
const TAG_TOKEN_TTL_MS = 62 * 86_400_000;
/** Bumps that failed while Redis was unreachable, retried before this instance trusts L2 again; bounded. */
const MAX_PENDING_BUMPS = 10_000;
const MAX_UNSENT = 10_000;
const MAX_TRACKED_INVALIDATIONS = 10_000;
/** Marks, in `pending`, a replica that must fill nothing until its database reaches the txid. */
const ALL = "*";

interface Flight {
  promise: Promise<CacheResult<unknown>>;
  gen: number;
}

export class TwoTierCache implements Cache {
  private readonly lru: Lru;
  private readonly l1Enabled: boolean;
  /** L1 is read and filled only while the bus is live (else another instance's change could be missed). */
  private l1Usable: boolean;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly inflight = new Map<string, Flight>();
  /** Bumped by every local invalidation; a load that started before an invalidation of its key or tags does not fill. */
  private generation = 0;
  private readonly invalidatedAt = new Map<string, number>();
  /** Loads and sets in progress; invalidations are tracked per key/tag only while there are some. */
  private active = 0;
  /** How many of them started at each generation: entries of invalidatedAt at or below the least are useless. */
  private readonly activeGens = new Map<number, number>();
  private clearedAt = 0;
  /** Tags/keys (prefixed "t:"/"k:") this replica must not fill until its database reaches the txid. */
  private readonly pending = new Map<string, string>();
  /**
   * Tags whose bump has not reached Redis yet, each with the number of its latest failed bump: a retry that
   * succeeds clears only the tags nobody failed to bump again while it was in flight.
   */
  private readonly pendingBumps = new Map<string, number>();
  private bumpSeq = 0;
  /** What failed to reach the bus, merged into one message and sent again until it goes through. */
  private readonly unsent = { keys: new Set<string>(), tags: new Set<string>(), txid: undefined as string | undefined, all: false };
  private publishing = false;
  private readonly position: PositionReader | undefined;
  private seq = 0;
  private readonly tokenSalt = crypto.randomUUID().slice(0, 8);
  private closed = false;
  private readonly counters = { hits: 0, misses: 0, published: 0, received: 0, stale: 0 };

  /** An outage fails every write's invalidation: one warning line per reason per interval. */
  private readonly warn: ThrottledWarn;

  constructor(private readonly opts: TwoTierOptions) {
    this.warn = throttledWarn(opts.logger);
    this.lru = new Lru(opts.l1);
    this.l1Enabled = opts.l1.enabled;
    this.l1Usable = false;
    this.ttlMs = opts.ttlSeconds * 1000;
    this.graceMs = opts.staleGraceSeconds * 1000;
    this.position = opts.position;
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
    const f = this.inflight.get(key);
    if (f !== undefined && f.gen === this.generation) return f.promise as Promise<CacheResult<T>>;
    const gen = this.generation;
    const promise = this.load(key, loader, opts?.tags ?? EMPTY, opts?.ttl, gen, opts?.shared ?? true);
    const flight: Flight = { promise, gen };
    this.inflight.set(key, flight);
    const done = () => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    };
    promise.then(done, done);
    return promise as Promise<CacheResult<T>>;
  }

  private async load(key: string, loader: () => Promise<unknown>, tags: readonly string[], ttl: number | undefined, gen: number, shared: boolean): Promise<CacheResult<unknown>> {
    this.begin(gen);
    try {
      return await this.loadTiers(key, loader, tags, ttl, gen, shared);
    } finally {
      this.end(gen);
    }
  }

  private begin(gen: number): void {
    this.active++;
    this.activeGens.set(gen, (this.activeGens.get(gen) ?? 0) + 1);
  }

  private end(gen: number): void {
    const n = this.activeGens.get(gen)! - 1;
    if (n === 0) this.activeGens.delete(gen);
    else this.activeGens.set(gen, n);
    if (--this.active === 0) this.invalidatedAt.clear();
  }

  /**
   * Keeps invalidatedAt bounded while loads never all finish at once: drops what no running load can be
   * affected by (at or below the generation the oldest one started at), and if one long load still pins too
   * much, forgets the details and treats every running load as invalidated (they answer but do not fill).
   */
  private boundTracked(): void {
    const max = this.opts.maxTrackedInvalidations ?? MAX_TRACKED_INVALIDATIONS;
    if (this.invalidatedAt.size <= max) return;
    let oldest = this.generation;
    for (const g of this.activeGens.keys()) if (g < oldest) oldest = g;
    for (const [k, g] of this.invalidatedAt) if (g <= oldest) this.invalidatedAt.delete(k);
    // Hysteresis, so that the scan above runs at most once per max/4 invalidations.
    if (this.invalidatedAt.size > (max * 3) / 4) {
      this.clearedAt = this.generation;
      this.invalidatedAt.clear();
    }
  }

  /** Size of the per-key/tag invalidation record (tests). */
  get trackedInvalidations(): number {
    return this.invalidatedAt.size;
  }

  private async loadTiers(key: string, loader: () => Promise<unknown>, tags: readonly string[], ttl: number | undefined, gen: number, shared: boolean): Promise<CacheResult<unknown>> {
    const l2 = shared ? this.opts.l2 : null;
    let tokens: string[] | undefined;
    let l2Stale: L2Entry | undefined;
    const policy = this.opts.l2Policy ?? alwaysL2;
    if (l2 !== null && !this.hasPendingBump(tags) && policy.useL2()) {
      const asked = performance.now();
      const r = await l2.read(key, tags);
      policy.observeL2(performance.now() - asked, r.ok, r.ok && r.entry !== undefined && r.fresh);
      if (r.ok) {
        tokens = r.tokens;
        const e = r.entry;
        if (e !== undefined) {
          if (r.fresh) {
            if (this.mayFill(key, tags, gen, tokens)) this.fillL1(key, e.value, e.json, tags, e.expiresAt, e.staleUntil);
            return { value: e.value, json: e.json, source: "hit-l2" };
          }
          if (e.staleUntil > Date.now()) l2Stale = e;
        }
      }
    }
    let value: unknown;
    const loading = performance.now();
    try {
      value = await loader();
      policy.observeLoad(performance.now() - loading);
    } catch (err) {
      const now = Date.now();
      const old = this.l1Usable ? this.lru.stale(key, now) : undefined;
      if (old !== undefined && this.mayServeStale(key, tags, gen)) {
        this.counters.stale++;
        return { value: old.value, json: old.json, source: "stale" };
      }
      if (l2Stale !== undefined && this.mayServeStale(key, tags, gen)) {
        this.counters.stale++;
        return { value: l2Stale.value, json: l2Stale.json, source: "stale" };
      }
      throw err;
    }
    const json = JSON.stringify(value) ?? "null";
    const now = Date.now();
    const expiresAt = now + (ttl !== undefined ? ttl * 1000 : this.ttlMs);
    const staleUntil = expiresAt + this.graceMs;
    if (this.mayFill(key, tags, gen, tokens)) {
      this.fillL1(key, value, json, tags, expiresAt, staleUntil);
      // A miss (null) stays in L1 only: unknown ids cost a caller nothing to invent, and each would be a Redis key.
      if (l2 !== null && tokens !== undefined && value !== null) void l2.write(key, json, tags, tokens, expiresAt, staleUntil);
    }
    return { value, json, source: "miss" };
  }

  private fillL1(key: string, value: unknown, json: string, tags: readonly string[], expiresAt: number, staleUntil: number): void {
    if (this.l1Usable) this.lru.set(key, value, json, tags, expiresAt, staleUntil);
  }

  /** Nothing invalidated the key or its tags since the load began, and (on a LiteFS replica) the data is current. */
  private mayFill(key: string, tags: readonly string[], gen: number, tokens: readonly string[] | undefined): boolean {
    if (this.closed) return false;
    if (!this.untouchedSince(key, tags, gen)) return false;
    if (this.position === undefined) return true;
    if (tokens !== undefined) {
      for (const t of tokens) {
        const dot = t.indexOf(".");
        if (dot === 16 && !this.position.atLeast(t.slice(0, 16))) return false;
      }
    }
    if (this.pending.size > 0) {
      for (const p of [ALL, `k:${key}`, ...tags.map((t) => `t:${t}`)]) {
        const txid = this.pending.get(p);
        if (txid === undefined) continue;
        if (!this.position.atLeast(txid)) return false;
        this.pending.delete(p);
      }
    }
    return true;
  }

  /** Serving an expired value is fine; serving one that was invalidated is not. */
  private mayServeStale(key: string, tags: readonly string[], gen: number): boolean {
    return this.untouchedSince(key, tags, gen);
  }

  private untouchedSince(key: string, tags: readonly string[], gen: number): boolean {
    if (this.generation === gen) return true;
    if (this.clearedAt > gen) return false;
    if ((this.invalidatedAt.get(`k:${key}`) ?? 0) > gen) return false;
    for (const t of tags) if ((this.invalidatedAt.get(`t:${t}`) ?? 0) > gen) return false;
    return true;
  }

  private hasPendingBump(tags: readonly string[]): boolean {
    if (this.pendingBumps.size === 0) return false;
    void this.retryBumps();
    for (const t of tags) if (this.pendingBumps.has(t)) return true;
    return false;
  }

  /** L1 only; a cached null (the services' "not found" marker) is left to getOrSet and its caller. */
  peek(key: string): CacheResult<unknown> | undefined {
    if (!this.l1Usable) return undefined;
    const e = this.lru.get(key, Date.now());
    if (e === undefined || e.value === null) return undefined;
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
    if (e === undefined || this.hasPendingBump(e.tags)) return undefined;
    return e.value as T;
  }

  async set<T>(key: string, value: T, opts?: CacheSetOptions): Promise<void> {
    const gen = this.generation;
    this.begin(gen);
    try {
      await this.setTiers(key, value, gen, opts);
    } finally {
      this.end(gen);
    }
  }

  private async setTiers(key: string, value: unknown, gen: number, opts?: CacheSetOptions): Promise<void> {
    const tags = opts?.tags ?? EMPTY;
    const json = JSON.stringify(value) ?? "null";
    const expiresAt = Date.now() + (opts?.ttl !== undefined ? opts.ttl * 1000 : this.ttlMs);
    const staleUntil = expiresAt + this.graceMs;
    const l2 = this.opts.l2;
    let tokens: string[] | undefined;
    if (l2 !== null && !this.hasPendingBump(tags)) tokens = await l2.tokens(tags);
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
    await this.publish({ i: this.opts.instanceId, k: [...keys] });
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    this.dropLocal(EMPTY, tags);
    const txid = this.stampTxid();
    const l2 = this.opts.l2;
    if (l2 !== null) {
      const ok = await l2.bumpTags(tags, this.newToken(txid), TAG_TOKEN_TTL_MS);
      if (!ok) {
        for (const t of tags) if (this.pendingBumps.size < MAX_PENDING_BUMPS || this.pendingBumps.has(t)) this.pendingBumps.set(t, ++this.bumpSeq);
        this.warn("cache: tag invalidation did not reach Redis; retried when it is back", { tags: tags.length });
        this.scheduleRetry();
      }
    }
    const msg: BusMessage = { i: this.opts.instanceId, t: [...tags] };
    if (txid !== null) msg.x = txid;
    await this.publish(msg);
  }

  private newToken(txid: string | null): string {
    return `${txid ?? "-"}.${this.tokenSalt}${(++this.seq).toString(36)}`;
  }

  private stampTxid(): string | null {
    if (this.position === undefined || !(this.opts.isPrimary?.() ?? false)) return null;
    return this.position.read()?.txid ?? null;
  }

  private retryTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * Until the failed bumps and bus messages are delivered, retry on a timer (bumps also on every read of
   * their tags).
   */
  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setInterval(() => {
      if (this.closed || (this.pendingBumps.size === 0 && !this.owesPublish())) {
        clearInterval(this.retryTimer);
        this.retryTimer = undefined;
        return;
      }
      void this.retryBumps();
      void this.retryPublish();
    }, 250);
    (this.retryTimer as { unref?: () => void }).unref?.();
  }

  private retrying = false;
  private async retryBumps(): Promise<void> {
    const l2 = this.opts.l2;
    if (this.retrying || l2 === null || !l2.available || this.pendingBumps.size === 0) return;
    this.retrying = true;
    try {
      const snapshot = [...this.pendingBumps];
      const tags = snapshot.map(([t]) => t);
      if (await l2.bumpTags(tags, this.newToken(this.stampTxid()), TAG_TOKEN_TTL_MS)) {
        // A bump of one of these tags that failed during the await (e.g. skipped because this retry was the
        // breaker's trial call) came after the token just written: it stays pending and is sent again.
        for (const [t, seq] of snapshot) if (this.pendingBumps.get(t) === seq) this.pendingBumps.delete(t);
        await this.publish({ i: this.opts.instanceId, t: tags });
        this.opts.logger.info("cache: pending tag invalidations delivered", { tags: tags.length });
      }
    } finally {
      this.retrying = false;
    }
  }

  private async publish(msg: BusMessage): Promise<void> {
    try {
      await this.opts.bus.publish(msg);
      this.counters.published++;
    } catch (err) {
      this.warn("cache bus publish failed; retried until it goes through", { error: (err as Error).message });
      this.owe(msg);
    }
  }

  /** Keeps a failed message for the retry; past the bound, the retry tells the others to clear all of L1. */
  private owe(msg: BusMessage): void {
    if (this.closed) return;
    const u = this.unsent;
    const max = this.opts.maxUnsent ?? MAX_UNSENT;
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
    this.scheduleRetry();
  }

  private owesPublish(): boolean {
    const u = this.unsent;
    return u.all || u.keys.size > 0 || u.tags.size > 0;
  }

  private async retryPublish(): Promise<void> {
    if (this.publishing || this.closed || !this.owesPublish()) return;
    this.publishing = true;
    // Taken out before the await: a message that fails meanwhile is owed anew, and this one is owed again if it fails.
    const u = this.unsent;
    const msg: BusMessage = { i: this.opts.instanceId };
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
      await this.opts.bus.publish(msg);
      this.counters.published++;
      this.opts.logger.info("cache: unsent bus message delivered", { keys: msg.k?.length ?? 0, tags: msg.t?.length ?? 0, all: msg.r === 1 });
    } catch {
      this.owe(msg);
    } finally {
      this.publishing = false;
    }
  }

  /** Drops keys/tags from L1 and makes running loads for them skip their fill. */
  private dropLocal(keys: readonly string[], tags: readonly string[]): void {
    const gen = ++this.generation;
    const track = this.active > 0;
    for (const k of keys) {
      this.lru.delete(k);
      if (track) this.invalidatedAt.set(`k:${k}`, gen);
    }
    if (tags.length > 0) {
      this.lru.deleteTags(tags);
      if (track) for (const t of tags) this.invalidatedAt.set(`t:${t}`, gen);
    }
    if (track) this.boundTracked();
  }

  private onMessage(m: BusMessage): void {
    if (m.i === this.opts.instanceId || this.closed) return;
    this.counters.received++;
    const keys = m.k ?? EMPTY;
    const tags = m.t ?? EMPTY;
    if (m.r === 1) this.resetLocal(`reset by ${m.i}`);
    else this.dropLocal(keys, tags);
    const pos = this.position;
    if (m.x === undefined || pos === undefined || (this.opts.isPrimary?.() ?? true) || pos.atLeast(m.x)) return;
    // This replica has not applied the write yet: whatever it loads now is older than the message.
    if (m.r === 1) this.markPending(ALL, m.x);
    for (const k of keys) this.markPending(`k:${k}`, m.x);
    for (const t of tags) this.markPending(`t:${t}`, m.x);
    void this.waitCatchUp(m.x, keys, tags, m.r === 1);
  }

  private markPending(p: string, txid: string): void {
    const cur = this.pending.get(p);
    if (cur === undefined || cur < txid) this.pending.set(p, txid);
  }

  /** Polls the position for a bounded time; when the replica catches up, unmarks and drops L1 once more. */
  private async waitCatchUp(txid: string, keys: readonly string[], tags: readonly string[], all = false): Promise<void> {
    const pos = this.position!;
    const deadline = performance.now() + (this.opts.catchUpWaitMs ?? 1_000);
    while (performance.now() < deadline && !this.closed) {
      await Bun.sleep(10);
      if (pos.atLeast(txid)) {
        for (const p of [...keys.map((k) => `k:${k}`), ...tags.map((t) => `t:${t}`), ...(all ? [ALL] : [])]) {
          if (this.pending.get(p) === txid) this.pending.delete(p);
        }
        if (all) this.resetLocal("replica caught up with a reset");
        else this.dropLocal(keys, tags);
        return;
      }
    }
    this.opts.logger.warn("cache: replica behind an invalidation; not caching those entries until it catches up", {
      txid,
      own: pos.read()?.txid ?? null,
    });
  }

  private resetLocal(reason: string): void {
    this.lru.clear();
    this.clearedAt = ++this.generation;
    this.opts.logger.debug("cache L1 cleared", { reason });
  }

  stats(): CacheStats {
    const { hits, misses, published, received } = this.counters;
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

  /** Stale answers served since start (not in the contract's stats; for logs and tests). */
  get staleServed(): number {
    return this.counters.stale;
  }

  /** L1 keys from most to least recently used (tests). */
  l1Keys(): string[] {
    return this.lru.keys();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.l1Usable = false;
    this.lru.clear();
    if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
    this.opts.l2Policy?.stop();
    await this.opts.bus.close();
  }
}
