// Cluster cron's leases: the Redis and in-process lease stores (exclusive acquire, compare-and-extend,
// compare-and-delete, expiry, per-tick claims) and the Lease that renews one, is lost to another holder, is
// given back when closed mid-acquire, and is given up when Redis cannot confirm its renewals. Real Redis on its
// own prefix; the scheduler that uses them: cron.test.ts.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Redis } from "../src/platform/redis.ts";
import { Lease, MemoryLeaseStore, RedisLeaseStore, type LeaseStore } from "../src/platform/cron/lease.ts";
import { REDIS_URL, TEST_TIMEOUT_MS } from "./helpers.ts";
import { countingStore, cronFile, logger } from "./fixtures/cron.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { tcpProxy } from "./support/tcp-proxy.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let redis: Redis;
const { newPrefix, closeAfter, slowAcquireStore, renewalsPassed } = cronFile("cron", (r) => (redis = r));

for (const kind of ["redis", "memory"] as const) {
  describe(`${kind} lease store`, () => {
    const store = (): LeaseStore => (kind === "redis" ? new RedisLeaseStore(redis, newPrefix()) : new MemoryLeaseStore());

    test("acquire is exclusive; extend and release only work for the holder's token", async () => {
      const s = store();
      expect(await s.acquire("job", "tok-a", 5_000)).toBe(true);
      expect(await s.acquire("job", "tok-b", 5_000)).toBe(false);
      expect(await s.holder("job")).toBe("tok-a");
      expect(await s.extend("job", "tok-b", 5_000)).toBe(false);
      expect(await s.extend("job", "tok-a", 5_000)).toBe(true);
      expect(await s.release("job", "tok-b")).toBe(false);
      expect(await s.holder("job")).toBe("tok-a");
      expect(await s.release("job", "tok-a")).toBe(true);
      expect(await s.holder("job")).toBeNull();
      expect(await s.acquire("job", "tok-b", 5_000)).toBe(true);
    });

    test("a lease expires after its time to live; an expired lease cannot be extended", async () => {
      const s = store();
      expect(await s.acquire("short", "tok-a", 150)).toBe(true);
      await waitUntil(async () => (await s.holder("short")) === null, 5_000, "the lease to expire");
      expect(await s.extend("short", "tok-a", 150)).toBe(false);
      expect(await s.acquire("short", "tok-b", 150)).toBe(true);
    });

    test("a claim is granted once", async () => {
      const s = store();
      expect(await s.claim("tick:1000", "a", 5_000)).toBe(true);
      expect(await s.claim("tick:1000", "b", 5_000)).toBe(false);
      expect(await s.claim("tick:2000", "b", 5_000)).toBe(true);
    });
  });
}

describe("Lease", () => {
  test("extend refreshes the time to live in Redis (renewal well before expiry)", async () => {
    const p = newPrefix();
    const counted = countingStore(new RedisLeaseStore(redis, p));
    const lease = new Lease(counted.store, "renewed", 900, "inst-1", logger);
    closeAfter(() => lease.release());
    const acquiredAt = Date.now();
    expect(await lease.ensure()).toBe(true);
    // Longer than the lease (renewals every third of it): only renewals keep it.
    await waitUntil(() => counted.renewals("renewed") >= 4 && Date.now() - acquiredAt > 900, 10_000, "renewals past the lease's first life");
    expect(lease.held).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    expect(String(await redis.get(`${p}lease:renewed`)).startsWith("inst-1:")).toBe(true);
    await lease.release();
    expect(await redis.get(`${p}lease:renewed`)).toBeNull();
  });

  test("is lost (signal aborted) as soon as a renewal finds another holder", async () => {
    const p = newPrefix();
    const lease = new Lease(new RedisLeaseStore(redis, p), "taken", 600, "inst-1", logger);
    closeAfter(() => lease.release());
    expect(await lease.ensure()).toBe(true);
    await redis.set(`${p}lease:taken`, "someone-else", { expiration: { type: "PX", value: 5_000 } });
    await waitUntil(() => lease.signal.aborted, 3_000, "the lease to be lost");
    expect(lease.held).toBe(false);
    // Releasing what is no longer ours leaves the other holder alone.
    await lease.release();
    expect(await redis.get(`${p}lease:taken`)).toBe("someone-else");
  });

  test("closed while its acquire is on the way: gives the lease back and arms no renewal", async () => {
    const p = newPrefix();
    const { slow, inAcquire } = slowAcquireStore(p);
    const counted = countingStore(slow);
    const lease = new Lease(counted.store, "closing", 600, "inst-1", logger);
    closeAfter(() => lease.close());
    const ensured = lease.ensure();
    await inAcquire;
    await lease.close();
    expect(await ensured).toBe(false);
    expect(lease.held).toBe(false);
    expect(await redis.get(`${p}lease:closing`)).toBeNull();
    // A renewal armed after close would re-take nothing, but an acquire kept would still be there now: a lease
    // of the same life taken after this point has been renewed twice, and this one not once.
    await renewalsPassed(newPrefix(), 600);
    expect(counted.renewals("closing")).toBe(0);
    expect(await redis.get(`${p}lease:closing`)).toBeNull();
    expect(await lease.ensure()).toBe(false);
    expect(await redis.get(`${p}lease:closing`)).toBeNull();
  });

  test("is given up before it could expire when Redis cannot confirm renewals", async () => {
    const proxy = tcpProxy("127.0.0.1", Number(new URL(REDIS_URL).port || 6379));
    const client = await redisClient(proxy.url);
    closeAfter(async () => {
      proxy.open();
      client.destroy();
      proxy.close();
    });
    const p = newPrefix();
    const lease = new Lease(new RedisLeaseStore(client, p), "cut", 1_000, "inst-1", logger);
    // Another instance, whose Redis connection works, takes the lease as soon as it is free.
    const other = new Lease(new RedisLeaseStore(redis, p), "cut", 1_000, "inst-2", logger);
    closeAfter(() => other.close());
    expect(await lease.ensure()).toBe(true);
    proxy.close();
    let givenUpWhenTaken: boolean | undefined;
    await waitUntil(
      async () => {
        const taken = await other.ensure();
        if (taken) givenUpWhenTaken = lease.signal.aborted;
        return taken;
      },
      { timeoutMs: 10_000, intervalMs: 20 },
      "the other instance to take the lease",
    );
    // Given up no later than its expiry (it could not know whether another instance holds it after that): never
    // two holders at once. And by its own expiry timer, which fires a margin before the lease can lapse in Redis.
    expect(givenUpWhenTaken).toBe(true);
    expect(String(lease.signal.reason)).toContain("could not be renewed in time");
  });
});
