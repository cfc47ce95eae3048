// Leases and one-shot claims, so a cron tick runs once in the cluster. Redis adapter: SET NX PX with a random
// token, compare-and-extend and compare-and-delete in Lua (a holder never extends or deletes another's
// lease). In-process adapter for the no-Redis mode, where this instance is the whole cluster.
import type { Redis } from "../redis.ts";
import { LuaScript } from "../jobs/script.ts";
import type { Logger } from "../observability/logger.ts";

export interface LeaseStore {
  /** True when `token` now holds the lease `name` for `ttlMs` (it was free). */
  acquire(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** True when `token` still held the lease and now holds it for `ttlMs` from now. */
  extend(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** Frees the lease if `token` holds it; true when it did. */
  release(name: string, token: string): Promise<boolean>;
  /** The token holding the lease, or null. */
  holder(name: string): Promise<string | null>;
  /** True for the first caller of `key` within `ttlMs` only. */
  claim(key: string, value: string, ttlMs: number): Promise<boolean>;
}

const EXTEND = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

export class RedisLeaseStore implements LeaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private leaseKey(name: string) {
    return `${this.prefix}lease:${name}`;
  }

  async acquire(name: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.leaseKey(name), token, { condition: "NX", expiration: { type: "PX", value: ttlMs } })) === "OK";
  }
  async extend(name: string, token: string, ttlMs: number): Promise<boolean> {
    return Number(await EXTEND.run(this.redis, [this.leaseKey(name)], [token, ttlMs])) === 1;
  }
  async release(name: string, token: string): Promise<boolean> {
    return Number(await RELEASE.run(this.redis, [this.leaseKey(name)], [token])) === 1;
  }
  async holder(name: string): Promise<string | null> {
    return (await this.redis.get(this.leaseKey(name))) as string | null;
  }
  async claim(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}claim:${key}`, value, { condition: "NX", expiration: { type: "PX", value: ttlMs } })) === "OK";
  }
}

export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, { token: string; until: number }>();
  private readonly claims = new Map<string, number>();

  private live(name: string) {
    const l = this.leases.get(name);
    if (l && l.until <= Date.now()) {
      this.leases.delete(name);
      return undefined;
    }
    return l;
  }
  async acquire(name: string, token: string, ttlMs: number) {
    if (this.live(name)) return false;
    this.leases.set(name, { token, until: Date.now() + ttlMs });
    return true;
  }
  async extend(name: string, token: string, ttlMs: number) {
    const l = this.live(name);
    if (!l || l.token !== token) return false;
    l.until = Date.now() + ttlMs;
    return true;
  }
  async release(name: string, token: string) {
    const l = this.live(name);
    if (!l || l.token !== token) return false;
    this.leases.delete(name);
    return true;
  }
  async holder(name: string) {
    return this.live(name)?.token ?? null;
  }
  async claim(key: string, _value: string, ttlMs: number) {
    const now = Date.now();
    if (this.claims.size > 10_000) for (const [k, until] of this.claims) if (until <= now) this.claims.delete(k);
    const until = this.claims.get(key);
    if (until !== undefined && until > now) return false;
    this.claims.set(key, now + ttlMs);
    return true;
  }
}

/**
 * One lease held by this instance: acquired on demand, renewed every third of its life, and given up
 * (its signal aborted) when a renewal finds another holder or cannot confirm it before it would expire.
 */
export class Lease {
  private token: string | null = null;
  private ctrl = new AbortController();
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private renewing = false;
  /** Set by close(): the lease is never taken again and arms no timer. */
  private closed = false;

  constructor(
    private readonly store: LeaseStore,
    readonly name: string,
    private readonly ttlMs: number,
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  get held(): boolean {
    return this.token !== null;
  }

  /** Aborted when the current holding ends (lost or released). */
  get signal(): AbortSignal {
    return this.ctrl.signal;
  }

  /** Holds the lease (acquiring it, or confirming it is still ours); false when someone else holds it. */
  async ensure(): Promise<boolean> {
    if (this.closed) return false;
    if (this.token !== null) {
      if (await this.renew()) return true;
      if (this.token !== null) return false;
    }
    const token = `${this.owner}:${crypto.randomUUID()}`;
    const started = Date.now();
    if (!(await this.store.acquire(this.name, token, this.ttlMs))) return false;
    if (this.closed) {
      // Closed while the acquire was on its way: give it back rather than hold (and renew) it for no one.
      await this.store.release(this.name, token).catch(() => undefined);
      return false;
    }
    this.token = token;
    this.ctrl = new AbortController();
    this.armExpiry(started);
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.log.info("cron lease acquired", { lease: this.name });
    return true;
  }

  /** Compare-and-extend; on "not ours any more" the lease is lost at once. */
  private async renew(): Promise<boolean> {
    const token = this.token;
    if (token === null || this.renewing) return token !== null;
    this.renewing = true;
    const started = Date.now();
    try {
      const ok = await this.store.extend(this.name, token, this.ttlMs);
      if (this.token !== token || this.closed) return false;
      if (!ok) {
        this.lose("another instance holds the lease");
        return false;
      }
      this.armExpiry(started);
      return true;
    } catch {
      // Unconfirmed: keep going until the expiry timer says the lease may have lapsed.
      return false;
    } finally {
      this.renewing = false;
    }
  }

  /** The lease is ours until `started + ttl` at best; stop trusting it a margin before that. */
  private armExpiry(started: number): void {
    clearTimeout(this.expiryTimer);
    const margin = Math.min(1_000, Math.floor(this.ttlMs / 5));
    const at = started + this.ttlMs - margin;
    this.expiryTimer = setTimeout(() => this.lose("the lease could not be renewed in time"), Math.max(0, at - Date.now()));
  }

  private lose(reason: string): void {
    if (this.token === null) return;
    this.token = null;
    clearInterval(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.log.warn("cron lease lost", { lease: this.name, reason });
    this.ctrl.abort(new Error(`lease lost: ${reason}`));
  }

  /** Compare-and-delete, so the next holder need not wait for the lease to expire. */
  async release(): Promise<void> {
    const token = this.token;
    if (token === null) return;
    this.token = null;
    clearInterval(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.ctrl.abort(new Error("lease released"));
    await this.store.release(this.name, token).catch(() => undefined);
  }

  /** Releases the lease for good: an acquire still in flight gives it back, and no timer is armed again. */
  async close(): Promise<void> {
    this.closed = true;
    await this.release();
  }
}
