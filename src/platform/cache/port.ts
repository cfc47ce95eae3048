// The cache as the services see it. Two adapters: a two-tier cache (L1 in process, L2 in Redis, coherent
// through a pub/sub bus) and a pass-through used when the cache is disabled.

/** Where a value came from; sent to clients as the `x-cache` header. */
export const CACHE_SOURCES = ["hit-l1", "hit-l2", "miss", "stale"] as const;
export type CacheSource = (typeof CACHE_SOURCES)[number];

export interface CacheSetOptions {
  /** Seconds to live; the adapter's default when absent. */
  ttl?: number;
  /** Tags for group invalidation, e.g. `user:42`. */
  tags?: readonly string[];
  /** False: this instance's L1 only, never Redis (values whose keys a caller can multiply at will). */
  shared?: boolean;
}

export interface CacheResult<T> {
  value: T;
  /** The value as JSON, kept with the entry so a hit can be written to the wire without serializing. */
  json: string;
  source: CacheSource;
}

export interface CacheStats {
  l1: { size: number; max_items: number; hits: number; misses: number; evictions: number; hit_ratio: number };
  l2: { available: boolean; hits: number; misses: number; errors: number };
  bus: { published: number; received: number };
}

export interface Cache {
  /** Returns the cached value, or runs `loader` once per key (single flight) and caches its result. */
  getOrSet<T>(key: string, loader: () => Promise<T>, opts?: CacheSetOptions): Promise<CacheResult<T>>;
  get<T>(key: string): Promise<T | undefined>;
  /** A fresh L1 entry, synchronously (counted as a hit), or undefined without loading anything. */
  peek?(key: string): CacheResult<unknown> | undefined;
  set<T>(key: string, value: T, opts?: CacheSetOptions): Promise<void>;
  delete(keys: readonly string[]): Promise<void>;
  /** Drops every entry carrying any of the tags, here, in L2, and (through the bus) in every other instance. */
  invalidateTags(tags: readonly string[]): Promise<void>;
  stats(): CacheStats;
  /** True while an invalidation (a tag bump in L2, a bus message) has not gone through yet and is being retried. */
  readonly owed?: boolean;
  /**
   * True while L1 is read and filled: the bus is live, so another instance's invalidation reaches this one's
   * entries. A caller's own memory of a value is only as coherent as this says.
   */
  readonly l1Live?: boolean;
  close(): Promise<void>;
}

/** The adapter for CACHE_ENABLED=false: every read runs its loader. */
export class NoCache implements Cache {
  private misses = 0;
  async getOrSet<T>(_key: string, loader: () => Promise<T>): Promise<CacheResult<T>> {
    this.misses++;
    const value = await loader();
    return { value, json: JSON.stringify(value), source: "miss" };
  }
  async get<T>(): Promise<T | undefined> {
    return undefined;
  }
  async set(): Promise<void> {}
  async delete(): Promise<void> {}
  async invalidateTags(): Promise<void> {}
  stats(): CacheStats {
    return {
      l1: { size: 0, max_items: 0, hits: 0, misses: this.misses, evictions: 0, hit_ratio: 0 },
      l2: { available: false, hits: 0, misses: 0, errors: 0 },
      bus: { published: 0, received: 0 },
    };
  }
  async close(): Promise<void> {}
}
