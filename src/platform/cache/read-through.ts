// The miss path of the two-tier cache (bentocache's factory runner): one load per key at a time (single
// flight), L2 before the loader when it is worth asking, serve-stale when the loader fails, fill when allowed.
import type { InvalidationTracker } from "./invalidation-tracker.ts";
import type { L2Entry, RedisL2 } from "./l2.ts";
import type { L2Policy } from "./l2-policy.ts";
import type { LruEntry } from "./lru.ts";
import type { CacheResult, CacheSetOptions } from "./port.ts";
import type { TagVersions } from "./tag-versions.ts";

const EMPTY: readonly string[] = [];

interface Flight {
  promise: Promise<CacheResult<unknown>>;
  gen: number;
}

/** What the read-through needs of the cache around it. */
export interface ReadThroughOptions {
  l2: RedisL2 | null;
  policy: L2Policy;
  tracker: InvalidationTracker;
  tags: TagVersions;
  ttlMs: number;
  graceMs: number;
  /** L1's expired entry for the key, when L1 is usable. */
  staleL1(key: string, now: number): LruEntry | undefined;
  fillL1(key: string, value: unknown, json: string, tags: readonly string[], expiresAt: number, staleUntil: number): void;
  /** Nothing invalidated the key or its tags since generation `gen`, and (on a LiteFS replica) the data is current. */
  mayFill(key: string, tags: readonly string[], gen: number, tokens: readonly string[] | undefined): boolean;
}

export class ReadThrough {
  private readonly inflight = new Map<string, Flight>();

  constructor(private readonly o: ReadThroughOptions) {}

  /** An L1 miss: joins the load of the key in flight, unless an invalidation came after it began. */
  load<T>(key: string, loader: () => Promise<T>, opts?: CacheSetOptions): Promise<CacheResult<T>> {
    const current = this.o.tracker.current;
    const f = this.inflight.get(key);
    if (f !== undefined && f.gen === current) return f.promise as Promise<CacheResult<T>>;
    const gen = current;
    const promise = this.tracked(key, loader, opts?.tags ?? EMPTY, opts?.ttl, gen, opts?.shared ?? true);
    const flight: Flight = { promise, gen };
    this.inflight.set(key, flight);
    const done = () => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    };
    promise.then(done, done);
    return promise as Promise<CacheResult<T>>;
  }

  private async tracked(key: string, loader: () => Promise<unknown>, tags: readonly string[], ttl: number | undefined, gen: number, shared: boolean): Promise<CacheResult<unknown>> {
    this.o.tracker.begin(gen);
    try {
      return await this.loadTiers(key, loader, tags, ttl, gen, shared);
    } finally {
      this.o.tracker.end(gen);
    }
  }

  private async loadTiers(key: string, loader: () => Promise<unknown>, tags: readonly string[], ttl: number | undefined, gen: number, shared: boolean): Promise<CacheResult<unknown>> {
    const o = this.o;
    const l2 = shared ? o.l2 : null;
    let tokens: string[] | undefined;
    let l2Stale: L2Entry | undefined;
    const policy = o.policy;
    if (l2 !== null && !o.tags.hasPendingBump(tags) && policy.useL2()) {
      const asked = performance.now();
      const r = await l2.read(key, tags);
      policy.observeL2(performance.now() - asked, r.ok, r.ok && r.entry !== undefined && r.fresh);
      if (r.ok) {
        tokens = r.tokens;
        const e = r.entry;
        if (e !== undefined) {
          if (r.fresh) {
            if (o.mayFill(key, tags, gen, tokens)) o.fillL1(key, e.value, e.json, tags, e.expiresAt, e.staleUntil);
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
      // Serving an expired value is fine; serving one that was invalidated is not.
      const old = o.staleL1(key, Date.now());
      if (old !== undefined && o.tracker.untouchedSince(key, tags, gen)) {
        return { value: old.value, json: old.json, source: "stale" };
      }
      if (l2Stale !== undefined && o.tracker.untouchedSince(key, tags, gen)) {
        return { value: l2Stale.value, json: l2Stale.json, source: "stale" };
      }
      throw err;
    }
    const json = JSON.stringify(value) ?? "null";
    const now = Date.now();
    const expiresAt = now + (ttl !== undefined ? ttl * 1000 : o.ttlMs);
    const staleUntil = expiresAt + o.graceMs;
    if (o.mayFill(key, tags, gen, tokens)) {
      o.fillL1(key, value, json, tags, expiresAt, staleUntil);
      // A miss (null) stays in L1 only: unknown ids cost a caller nothing to invent, and each would be a Redis key.
      if (l2 !== null && tokens !== undefined && value !== null) void l2.write(key, json, tags, tokens, expiresAt, staleUntil);
    }
    return { value, json, source: "miss" };
  }
}
