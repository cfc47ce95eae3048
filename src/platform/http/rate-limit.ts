// Rate limits as GCRA (the generic cell rate algorithm: one "theoretical arrival time" per key, no counters
// to reset). Two adapters behind one port: in-process (no-Redis mode), and Redis, where a decision is one
// Lua call. The Redis adapter also decides locally when asked to (reads: no round trip on their path) and
// sends what it let through to Redis in the background, taking the shared state back in the same call.
import type { Redis } from "../redis.ts";
import { LuaScript } from "../jobs/script.ts";
import { withTimeout } from "../redis.ts";
import type { Logger } from "../observability/logger.ts";

export interface RatePolicy {
  /** Name in the RateLimit headers ("read", "login-ip"...). */
  name: string;
  /** Requests allowed per window; at most that many at once. */
  limit: number;
  windowSeconds: number;
  /** Kept in this process apart from the other policies' keys, which cannot push them out (login lock-outs). */
  apart?: boolean;
}

export interface RateDecision {
  allowed: boolean;
  policy: RatePolicy;
  /** Requests left at once. */
  remaining: number;
  /** Seconds until the full quota is back. */
  resetSeconds: number;
  /** Seconds until one more request is allowed (0 when allowed). */
  retryAfterSeconds: number;
}

export interface RateLimitStats {
  limited: number;
  /** Decisions this instance made alone because Redis failed, timed out, or had just done so. */
  store_errors: number;
  /** Keys whose limit still held that this process dropped from memory to stay bounded. */
  dropped: number;
}

export interface RateLimiter {
  /** Decided in this process at once; with a shared store, reconciled with it in the background. */
  local(key: string, policy: RatePolicy): RateDecision;
  /** Decided by the shared store when there is one (one round trip), else in this process. */
  shared(key: string, policy: RatePolicy): Promise<RateDecision>;
  /** Gives back one request counted under `key` (a login that turned out right). */
  forgive(key: string, policy: RatePolicy): Promise<void>;
  stats(): RateLimitStats;
  close(): Promise<void>;
}

/** The decision, from whether the request was let through and how far ahead of now (ms) the arrival time is after it. */
export function decisionOf(allowed: boolean, aheadMs: number, policy: RatePolicy): RateDecision {
  const windowMs = policy.windowSeconds * 1000;
  const interval = windowMs / policy.limit;
  return {
    allowed,
    policy,
    remaining: Math.max(0, Math.floor((windowMs - aheadMs) / interval)),
    resetSeconds: Math.max(0, Math.ceil(aheadMs / 1000)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((aheadMs + interval - windowMs) / 1000)),
  };
}

/** One GCRA step: the new arrival time and the decision, from the stored one (0 when none) and `now` (ms). */
export function gcra(tat: number, now: number, policy: RatePolicy): { tat: number; decision: RateDecision } {
  const windowMs = policy.windowSeconds * 1000;
  const base = Math.max(tat, now);
  const next = base + windowMs / policy.limit;
  const allowed = next - now <= windowMs;
  const after = allowed ? next : base;
  return { tat: after, decision: decisionOf(allowed, after - now, policy) };
}

/** Keys each of a limiter's two stores holds at most in this process. */
export const MAX_KEYS = 100_000;

/**
 * Arrival times per key, bounded, in two generations: keys written go to the young one; once it holds half the
 * bound, the young one becomes old, and of the old one only the entries whose limit still holds (arrival time
 * after now) go on, into the new young one, at most a quarter of the bound: beyond that, those closest to expiry
 * are dropped (counted). A key written again moves to the young one. So a key in use survives, and so does a
 * refused client however many other keys come and go (it is not written while refused); an expired entry goes
 * once untouched through a generation. Each turn looks at the dropped generation's entries once, and comes after
 * at least a quarter of the bound of new keys: a constant per key written, however full the store. (A sweep of
 * the whole map per new key made a flood of fresh client addresses cost CPU in proportion to the map; dropping a
 * Map's oldest entries one by one is no better in Bun: its iteration steps over every entry deleted before, which
 * grows with the churn.)
 */
export class KeyTimes {
  private young = new Map<string, number>();
  private old = new Map<string, number>();
  /** Generations turned to make room. */
  turns = 0;
  /** Entries whose limit still held, dropped to stay bounded (their keys start again with a full quota). */
  dropped = 0;
  constructor(
    readonly max = MAX_KEYS,
    private readonly clock: () => number = Date.now,
  ) {}

  get size(): number {
    return this.young.size + this.old.size;
  }

  get(key: string): number | undefined {
    return this.young.get(key) ?? this.old.get(key);
  }

  put(key: string, tat: number): void {
    if (!this.young.has(key)) {
      if (this.young.size >= this.max / 2) this.turn();
      else this.old.delete(key);
    }
    this.young.set(key, tat);
  }

  delete(key: string): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  private turn(): void {
    this.turns++;
    const now = this.clock();
    const gone = this.old;
    this.old = this.young;
    this.young = new Map();
    let held: [string, number][] = [];
    for (const entry of gone) if (entry[1] > now) held.push(entry);
    const room = Math.floor(this.max / 4);
    if (held.length > room) {
      this.dropped += held.length - room;
      held = held.sort((a, b) => b[1] - a[1]).slice(0, room);
    }
    for (const [key, tat] of held) this.young.set(key, tat);
  }
}

/**
 * Arrival times per key in this process, in two bounded stores: the policies marked `apart` (failed logins per
 * account) have their own, so that keys anyone can make by the hundred thousand (one per client address) never
 * push a login lock-out out of memory. Login keys are made no faster than passwords are checked (an attempt
 * refused before its check is given back and leaves no entry): a lock-out is over long before keys made that
 * way could push it out.
 */
export class LocalState {
  readonly keys: KeyTimes;
  readonly apart: KeyTimes;
  constructor(max = MAX_KEYS) {
    this.keys = new KeyTimes(max);
    this.apart = new KeyTimes(max);
  }
  private of(policy: RatePolicy): KeyTimes {
    return policy.apart === true ? this.apart : this.keys;
  }
  get(key: string, policy: RatePolicy): number | undefined {
    return this.of(policy).get(key);
  }
  take(key: string, policy: RatePolicy, now = Date.now()): RateDecision {
    const store = this.of(policy);
    const r = gcra(store.get(key) ?? 0, now, policy);
    if (r.decision.allowed) store.put(key, r.tat);
    return r.decision;
  }
  put(key: string, policy: RatePolicy, tat: number): void {
    this.of(policy).put(key, tat);
  }
  forgive(key: string, policy: RatePolicy, now = Date.now()): void {
    const store = this.of(policy);
    const t = store.get(key);
    if (t === undefined) return;
    const back = t - (policy.windowSeconds * 1000) / policy.limit;
    // Nothing left to remember: an attempt refused before its password was checked leaves no entry behind.
    if (back <= now) store.delete(key);
    else store.put(key, back);
  }
  /** Entries whose limit still held, dropped to stay bounded, in both stores. */
  get dropped(): number {
    return this.keys.dropped + this.apart.dropped;
  }
}

export class MemoryRateLimiter implements RateLimiter {
  constructor(readonly state = new LocalState()) {}
  private limited = 0;
  local(key: string, policy: RatePolicy): RateDecision {
    const d = this.state.take(key, policy);
    if (!d.allowed) this.limited++;
    return d;
  }
  async shared(key: string, policy: RatePolicy): Promise<RateDecision> {
    return this.local(key, policy);
  }
  async forgive(key: string, policy: RatePolicy): Promise<void> {
    this.state.forgive(key, policy);
  }
  stats(): RateLimitStats {
    return { limited: this.limited, store_errors: 0, dropped: this.state.dropped };
  }
  async close(): Promise<void> {}
}

/**
 * KEYS[1] the key; ARGV: interval ms, window ms, cost, force. Time is Redis's own (one clock for every
 * instance). Without force, a request over the limit is refused and changes nothing; with force (background
 * reconciliation of requests already let through) the cost is always added, the arrival time capped at two
 * windows ahead. Returns {allowed, tat - now} in ms.
 */
const GCRA = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + cost * interval
local allowed = 1
if nxt - now > window then
  if ARGV[4] == '1' then
    if nxt - now > 2 * window then nxt = now + 2 * window end
  else
    allowed = 0
    nxt = tat
  end
end
if nxt > now then redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil(nxt - now) + 1000) end
return {allowed, math.floor(nxt - now)}
`);

const FORGIVE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local back = tat - tonumber(ARGV[1])
if back < now then back = now end
if back > now then redis.call('SET', KEYS[1], tostring(back), 'PX', math.ceil(back - now) + 1000)
else redis.call('DEL', KEYS[1]) end
return 1
`);

/** How long decisions stay local after a failed Redis call before Redis is tried again. */
export const SKIP_AFTER_FAILURE_MS = 1_000;

export interface RedisRateLimiterOptions {
  prefix: string;
  logger: Logger;
  /** A decision waits at most this long for Redis before this instance decides alone. */
  timeoutMs: number;
  /** How often locally decided requests are sent to Redis (and the shared state taken back). */
  reconcileMs?: number;
}

export class RedisRateLimiter implements RateLimiter {
  readonly state = new LocalState();
  /** Requests let through locally and not yet sent, per key, with their policy. */
  private readonly pending = new Map<string, { policy: RatePolicy; count: number }>();
  private readonly timer: ReturnType<typeof setInterval>;
  private flushing = false;
  private limited = 0;
  private errors = 0;
  private lastWarn = 0;
  /** After a failed call, Redis is not asked again until then: an outage costs one timeout, not one per request. */
  private skipUntil = 0;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisRateLimiterOptions,
  ) {
    this.timer = setInterval(() => void this.reconcile(), opts.reconcileMs ?? 250);
    (this.timer as { unref?: () => void }).unref?.();
  }

  local(key: string, policy: RatePolicy): RateDecision {
    const d = this.state.take(key, policy);
    if (!d.allowed) {
      this.limited++;
      return d;
    }
    const p = this.pending.get(key);
    if (p) p.count++;
    else if (this.pending.size < MAX_KEYS) this.pending.set(key, { policy, count: 1 });
    return d;
  }

  async shared(key: string, policy: RatePolicy): Promise<RateDecision> {
    if (this.skipping()) return this.alone(key, policy);
    try {
      const [allowed, ahead] = (await this.call(GCRA, key, policy, 1, false)) as [number, number];
      const now = Date.now();
      // Keep this instance's view in step, so that a fallback during an outage starts from it.
      this.state.put(key, policy, now + ahead);
      if (allowed !== 1) this.limited++;
      return decisionOf(allowed === 1, ahead, policy);
    } catch (err) {
      this.failed(err);
      return this.alone(key, policy);
    }
  }

  /** This instance's own decision (Redis unreachable). */
  private alone(key: string, policy: RatePolicy): RateDecision {
    const d = this.state.take(key, policy);
    if (!d.allowed) this.limited++;
    return d;
  }

  private skipping(): boolean {
    if (Date.now() >= this.skipUntil) return false;
    this.errors++;
    return true;
  }

  async forgive(key: string, policy: RatePolicy): Promise<void> {
    this.state.forgive(key, policy);
    if (this.skipping()) return;
    try {
      await withTimeout(
        FORGIVE.run(this.redis, [this.opts.prefix + "rl:" + key], [(policy.windowSeconds * 1000) / policy.limit]),
        this.opts.timeoutMs,
        "rate limit forgive",
      );
    } catch (err) {
      this.failed(err);
    }
  }

  /** Sends the locally counted requests; each reply is the shared arrival time, taken if it is later. */
  async reconcile(): Promise<void> {
    if (this.flushing || this.pending.size === 0 || Date.now() < this.skipUntil) return;
    this.flushing = true;
    const batch = [...this.pending];
    this.pending.clear();
    try {
      await Promise.all(
        batch.map(async ([key, { policy, count }]) => {
          const [, ahead] = (await this.call(GCRA, key, policy, count, true)) as [number, number];
          const now = Date.now();
          if (now + ahead > (this.state.get(key, policy) ?? 0)) this.state.put(key, policy, now + ahead);
        }),
      );
    } catch (err) {
      this.failed(err);
    } finally {
      this.flushing = false;
    }
  }

  private call(script: LuaScript, key: string, policy: RatePolicy, cost: number, force: boolean): Promise<unknown> {
    const interval = (policy.windowSeconds * 1000) / policy.limit;
    return withTimeout(
      script.run(this.redis, [this.opts.prefix + "rl:" + key], [interval, policy.windowSeconds * 1000, cost, force ? 1 : 0]),
      this.opts.timeoutMs,
      "rate limit",
    );
  }

  /** Fails open to this instance's own limits; logged at most every 30 s, every failure counted. */
  private failed(err: unknown): void {
    this.errors++;
    const now = Date.now();
    this.skipUntil = now + SKIP_AFTER_FAILURE_MS;
    if (now - this.lastWarn < 30_000) return;
    this.lastWarn = now;
    this.opts.logger.warn("rate limits: Redis unreachable; each instance limits alone until it is back", {
      error: (err as Error)?.message ?? String(err),
      failures: this.errors,
    });
  }

  stats(): RateLimitStats {
    return { limited: this.limited, store_errors: this.errors, dropped: this.state.dropped };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.reconcile().catch(() => {});
  }
}
