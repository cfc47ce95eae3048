// L2: entries in Redis as plain text (a version line, a JSON header, the JSON body: nothing on read is
// executed), every call bounded by a timeout that follows the observed latency (so a healthy Redis seen
// through a CPU-loaded event loop does not time out), and a breaker that skips Redis for a while after
// consecutive failures. Tags are version tokens in Redis (see two-tier.ts for why).
import type { Redis } from "../redis.ts";
import { withTimeout } from "../redis.ts";
import { LuaScript } from "../jobs/script.ts";
import type { BusCarrier } from "./bus.ts";

export const L2_FORMAT = "v1";

export interface L2Entry {
  value: unknown;
  json: string;
  /** Fresh until, ms since epoch. */
  expiresAt: number;
  /** Servable as stale until, ms since epoch. */
  staleUntil: number;
  /** The entry's tags and their tokens when the value was loaded. */
  tags: string[];
  tokens: string[];
}

export type L2Read =
  /** Redis answered: the entry (if present, well formed and written for these tag tokens) and the current tokens. */
  | { ok: true; entry: L2Entry | undefined; tokens: string[]; corrupt: boolean; fresh: boolean }
  | { ok: false };

export function encodeEntry(json: string, expiresAt: number, staleUntil: number, tags: readonly string[], tokens: readonly string[]): string {
  return `${L2_FORMAT}\n${JSON.stringify({ e: expiresAt, s: staleUntil, g: tags, t: tokens })}\n${json}`;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Parses a stored entry; null when it is not one this code wrote (corrupt, truncated, other format). */
export function decodeEntry(raw: string): L2Entry | null {
  if (!raw.startsWith(`${L2_FORMAT}\n`)) return null;
  const start = L2_FORMAT.length + 1;
  const nl = raw.indexOf("\n", start);
  if (nl < 0) return null;
  try {
    const h = JSON.parse(raw.slice(start, nl)) as { e?: unknown; s?: unknown; g?: unknown; t?: unknown };
    if (typeof h.e !== "number" || typeof h.s !== "number" || !isStrings(h.g) || !isStrings(h.t) || h.g.length !== h.t.length) {
      return null;
    }
    const json = raw.slice(nl + 1);
    const value = JSON.parse(json) as unknown;
    return { value, json, expiresAt: h.e, staleUntil: h.s, tags: h.g, tokens: h.t };
  } catch {
    return null;
  }
}

/**
 * Consecutive failures open it for a cooldown; then one trial call decides. Kept apart from the shared
 * opossum-based Breakers (platform/resilience) because it sits on every L1 miss: docs/operations.md has the
 * measurement. Its counters change only on failures and refusals, never on the success path.
 */
export class Breaker {
  private failures = 0;
  private openUntil = 0;
  private trial = false;
  private changedAt: number | null = null;
  private counts = { failures: 0, rejected: 0, opened: 0 };
  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
  ) {}
  get open(): boolean {
    return this.failures >= this.threshold && performance.now() < this.openUntil;
  }
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    if (performance.now() < this.openUntil || this.trial) {
      this.counts.rejected++;
      return false;
    }
    this.trial = true;
    this.changedAt = Date.now();
    return true;
  }
  success(): void {
    if (this.failures >= this.threshold) this.changedAt = Date.now();
    this.failures = 0;
    this.trial = false;
  }
  failure(): void {
    this.trial = false;
    this.failures++;
    this.counts.failures++;
    if (this.failures >= this.threshold) {
      this.openUntil = performance.now() + this.cooldownMs;
      this.changedAt = Date.now();
      this.counts.opened++;
    }
  }
  /** As the dashboard and /metrics show breakers (resilience/breakers.ts BreakerView, less its name). */
  view(): { state: "closed" | "open" | "half_open"; since: string | null; failures: number; rejected: number; opened_total: number } {
    const state = this.failures < this.threshold ? "closed" : this.trial || performance.now() >= this.openUntil ? "half_open" : "open";
    return {
      state,
      since: this.changedAt === null ? null : new Date(this.changedAt).toISOString(),
      failures: this.counts.failures,
      rejected: this.counts.rejected,
      opened_total: this.counts.opened,
    };
  }
}

export interface L2Stats {
  hits: number;
  misses: number;
  errors: number;
}

function sameTags(entry: L2Entry, tags: readonly string[], tokens: readonly string[]): boolean {
  if (entry.tags.length !== tags.length || entry.tokens.length !== tokens.length) return false;
  for (let i = 0; i < tags.length; i++) if (entry.tags[i] !== tags[i] || entry.tokens[i] !== tokens[i]) return false;
  return true;
}

/**
 * A tag bump and its bus message in one round trip: every KEYS[i] gets the token ARGV[1] (PX ARGV[2]), then
 * ARGV[4] is published on ARGV[3]. Atomic, so a subscriber that reads the tag after the message sees the token.
 */
const BUMP_AND_PUBLISH = new LuaScript(
  "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end return redis.call('PUBLISH', ARGV[3], ARGV[4])",
);

/** The adaptive timeout never exceeds this (a hung Redis must still cost little). */
const MAX_ADAPTIVE_TIMEOUT_MS = 1_000;
/** Invalidations (tag bumps, deletes) get this many times a read's timeout: a failed one leaves others stale. */
const INVALIDATION_FACTOR = 4;

export class RedisL2 {
  readonly stats: L2Stats = { hits: 0, misses: 0, errors: 0 };
  private readonly breaker: Breaker;
  /** Moving average of successful calls' durations, event-loop lag included (ms). */
  private latencyMs = 0;

  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    breaker: { threshold: number; cooldownMs: number },
  ) {
    this.breaker = new Breaker(breaker.threshold, breaker.cooldownMs);
  }

  entryKey(key: string): string {
    return `${this.prefix}cache:e:${key}`;
  }
  tagKey(tag: string): string {
    return `${this.prefix}cache:t:${tag}`;
  }

  get available(): boolean {
    return this.client.isReady && !this.breaker.open;
  }

  /** The breaker's state and counts; "open" also while the client is not connected (nothing is sent then). */
  breakerView(): ReturnType<Breaker["view"]> {
    const v = this.breaker.view();
    return this.client.isReady || v.state !== "closed" ? v : { ...v, state: "open" };
  }

  /**
   * The configured timeout, or four times the recent latency when that is more (capped): under CPU load every
   * call is slower, Redis included, and a timeout that ignores it trips on a healthy Redis.
   */
  get effectiveTimeoutMs(): number {
    return Math.min(Math.max(MAX_ADAPTIVE_TIMEOUT_MS, this.timeoutMs), Math.max(this.timeoutMs, Math.ceil(4 * this.latencyMs)));
  }

  /** Runs one Redis call under the breaker and the timeout; undefined when skipped or failed. */
  private call<T>(fn: () => Promise<T>, what: string, factor = 1): Promise<{ v: T } | undefined> {
    return this.breaker.allow() ? this.allowed(fn, what, factor) : Promise.resolve(undefined);
  }

  /** call() once the breaker has let it through. */
  private async allowed<T>(fn: () => Promise<T>, what: string, factor: number): Promise<{ v: T } | undefined> {
    try {
      const started = performance.now();
      const v = await withTimeout(fn(), this.effectiveTimeoutMs * factor, what);
      const took = performance.now() - started;
      this.latencyMs = this.latencyMs === 0 ? took : this.latencyMs * 0.9 + took * 0.1;
      this.breaker.success();
      return { v };
    } catch {
      this.stats.errors++;
      this.breaker.failure();
      return undefined;
    }
  }

  /**
   * One round trip: the entry and the current token of each tag (a missing tag key is token "0"). An entry
   * written under older tokens is as good as absent; a fresh one counts as a hit, anything else as a miss.
   */
  async read(key: string, tags: readonly string[]): Promise<L2Read> {
    const k = this.entryKey(key);
    const r = await this.call(() => this.client.mGet([k, ...tags.map((t) => this.tagKey(t))]), "cache l2 read");
    if (!r) return { ok: false };
    const [raw, ...tagValues] = r.v as (string | null)[];
    const tokens = tagValues.map((t) => t ?? "0");
    const miss = (corrupt: boolean): L2Read => {
      this.stats.misses++;
      return { ok: true, entry: undefined, tokens, corrupt, fresh: false };
    };
    if (raw === null || raw === undefined) return miss(false);
    const entry = decodeEntry(raw);
    if (entry === null) {
      void this.call(() => this.client.del(k), "cache l2 delete");
      return miss(true);
    }
    if (!sameTags(entry, tags, tokens)) return miss(false);
    const fresh = entry.expiresAt > Date.now();
    if (fresh) this.stats.hits++;
    else this.stats.misses++;
    return { ok: true, entry, tokens, corrupt: false, fresh };
  }

  /** For get(), which does not know the tags: reads the entry, then checks the tokens of the tags it names. */
  async readUntagged(key: string): Promise<L2Entry | undefined> {
    const k = this.entryKey(key);
    const r = await this.call(() => this.client.get(k), "cache l2 read");
    if (!r) return undefined;
    const raw = r.v as string | null;
    const entry = raw === null ? null : decodeEntry(raw);
    if (raw !== null && entry === null) void this.call(() => this.client.del(k), "cache l2 delete");
    let ok = entry !== null && entry.expiresAt > Date.now();
    if (ok && entry!.tags.length > 0) {
      const current = await this.tokens(entry!.tags);
      ok = current !== undefined && sameTags(entry!, entry!.tags, current);
    }
    if (!ok) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return entry!;
  }

  /** Current tokens of the tags (for set() without a preceding read). */
  async tokens(tags: readonly string[]): Promise<string[] | undefined> {
    if (tags.length === 0) return [];
    const r = await this.call(() => this.client.mGet(tags.map((t) => this.tagKey(t))), "cache l2 tokens");
    return r ? (r.v as (string | null)[]).map((t) => t ?? "0") : undefined;
  }

  async write(key: string, json: string, tags: readonly string[], tokens: readonly string[], expiresAt: number, staleUntil: number): Promise<boolean> {
    const px = Math.max(1, Math.ceil(staleUntil - Date.now()));
    const raw = encodeEntry(json, expiresAt, staleUntil, tags, tokens);
    return (await this.call(() => this.client.set(this.entryKey(key), raw, { expiration: { type: "PX", value: px } }), "cache l2 write")) !== undefined;
  }

  async delete(keys: readonly string[]): Promise<boolean> {
    if (keys.length === 0) return true;
    return (await this.call(() => this.client.del(keys.map((k) => this.entryKey(k))), "cache l2 delete", INVALIDATION_FACTOR)) !== undefined;
  }

  /**
   * Gives each tag a new token, which orphans every L2 entry written under the old one. The token key
   * outlives any entry (`ttlMs`), so it never falls back to "0" while an entry stamped "0" could exist.
   */
  async bumpTags(tags: readonly string[], token: string, ttlMs: number): Promise<boolean> {
    if (tags.length === 0) return true;
    const run = () => {
      const m = this.client.multi();
      for (const t of tags) m.set(this.tagKey(t), token, { expiration: { type: "PX", value: ttlMs } });
      return m.exec();
    };
    return (await this.call(run, "cache l2 tag bump", INVALIDATION_FACTOR)) !== undefined;
  }

  /** Whether the bus message can ride on this L2's calls: the bus publishes on the same client. */
  canCarry(carrier: BusCarrier): boolean {
    return carrier.client === this.client;
  }

  /**
   * bumpTags() and the bus's PUBLISH of `carrier` in one call (a Lua script by its SHA, loaded again after a
   * Redis restart). "refused": the breaker sent nothing, so the caller publishes the message on its own;
   * "failed": neither can be assumed to have landed (a timeout may hide either), both are owed.
   */
  async bumpTagsAndPublish(tags: readonly string[], token: string, ttlMs: number, carrier: BusCarrier): Promise<"ok" | "failed" | "refused"> {
    if (!this.breaker.allow()) return "refused";
    const keys = tags.map((t) => this.tagKey(t));
    const run = () => BUMP_AND_PUBLISH.run(this.client, keys, [token, ttlMs, carrier.channel, carrier.raw]);
    return (await this.allowed(run, "cache l2 tag bump", INVALIDATION_FACTOR)) !== undefined ? "ok" : "failed";
  }

  /** Raw access for tests and tools: the stored text of an entry. */
  async rawGet(key: string): Promise<string | null> {
    return (await this.client.get(this.entryKey(key))) as string | null;
  }
  async rawSet(key: string, raw: string, ttlMs: number): Promise<void> {
    await this.client.set(this.entryKey(key), raw, { expiration: { type: "PX", value: ttlMs } });
  }
}
