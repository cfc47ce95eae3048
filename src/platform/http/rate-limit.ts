// Fixed-window rate limits. Redis adapter (shared by the cluster) and an in-process one (no-Redis mode).
import type { Redis } from "../redis.ts";

export interface RateLimitResult {
  allowed: boolean;
  /** Seconds until the window resets. */
  retryAfter: number;
}

export interface RateLimiter {
  /** Counts one event in the current window and says whether the count is within `limit`. */
  hit(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult>;
  /** Takes back one event counted by `hit` in the current window (for attempts that turned out fine). */
  forgive(key: string): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  async hit(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult> {
    const now = Date.now();
    if (this.windows.size > 100_000) {
      for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    }
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowSeconds * 1000 };
      this.windows.set(key, w);
    }
    w.count++;
    return { allowed: w.count <= limit, retryAfter: Math.max(1, Math.ceil((w.resetAt - now) / 1000)) };
  }
  async forgive(key: string): Promise<void> {
    const w = this.windows.get(key);
    if (w && w.resetAt > Date.now() && w.count > 0) w.count--;
  }
}

export class RedisRateLimiter implements RateLimiter {
  private readonly fallback = new MemoryRateLimiter();
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  async hit(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult> {
    const k = `${this.prefix}rl:${key}`;
    try {
      const [count, ttl] = (await this.redis
        .multi()
        .incr(k)
        .pExpire(k, windowSeconds * 1000, "NX")
        .pTTL(k)
        .exec()) as unknown as [number, unknown, number];
      return { allowed: count <= limit, retryAfter: Math.max(1, Math.ceil(Number(ttl) / 1000)) };
    } catch {
      // Redis down: limit per instance rather than not at all.
      return this.fallback.hit(key, limit, windowSeconds);
    }
  }
  async forgive(key: string): Promise<void> {
    try {
      await this.redis.eval(FORGIVE, { keys: [`${this.prefix}rl:${key}`] });
    } catch {
      await this.fallback.forgive(key);
    }
  }
}

/** Decrements a live window only: a window that expired meanwhile is not recreated without its TTL. */
const FORGIVE = `if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0`;
