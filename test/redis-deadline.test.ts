// A Redis call made just before this process holds its event loop (a start-up's compiling, a burst of synchronous
// work) is not even sent until the loop is free: its deadline counts from the send, so the delay is not Redis's
// (the L2's errors, and its breaker's failures, stay Redis's own). A hung Redis still times out:
// reliability-redis-hang.test.ts.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createLogger } from "../src/platform/observability/logger.ts";
import { openRedis, withTimeout, type Redis } from "../src/platform/redis.ts";
import { RedisL2 } from "../src/platform/cache/l2.ts";
import { dropPrefix, REDIS_URL, testPrefix, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const prefix = testPrefix("deadline");
const clients: Redis[] = [];
afterAll(async () => {
  await dropPrefix(clients[0]!, prefix);
  for (const c of clients) await c.close();
});

// A deadline a loaded machine's Redis meets with room to spare, and a hold many times longer: a deadline counted
// from the call (not the send) would expire during the hold every time, however slow the machine.
const DEADLINE_MS = 250;
const HOLD_MS = 2_000;

/** Holds the event loop well past every deadline below, as a long synchronous task would. */
const holdLoop = () => {
  const until = performance.now() + HOLD_MS;
  while (performance.now() < until);
};

describe("a Redis call made just before the event loop is held", () => {
  test("is answered, under withTimeout and under the client's own command deadline", async () => {
    const client = await openRedis(REDIS_URL, createLogger("silent"), { commandTimeoutMs: DEADLINE_MS });
    clients.push(client);
    await client.set(`${prefix}k`, "v");
    for (let i = 0; i < 2; i++) {
      const raced = withTimeout(client.get(`${prefix}k`), DEADLINE_MS, "test read");
      const bounded = client.get(`${prefix}k`);
      holdLoop();
      expect(await raced).toBe("v");
      expect(await bounded).toBe("v");
    }
  });

  test("the L2's writes and reads succeed: no error, no breaker failure", async () => {
    const client = await openRedis(REDIS_URL, createLogger("silent"));
    clients.push(client);
    const l2 = new RedisL2(client, prefix, DEADLINE_MS, { threshold: 2, cooldownMs: 60_000 });
    const now = Date.now();
    for (let round = 0; round < 2; round++) {
      // As a warming's last writes are left in flight when the start goes on with synchronous work.
      const writes = [1, 2, 3, 4].map((n) => l2.write(`w${n}`, `{"n":${n}}`, [], [], now + 60_000, now + 120_000));
      holdLoop();
      expect(await Promise.all(writes)).toEqual([true, true, true, true]);
    }
    const read = l2.read("w1", []);
    holdLoop();
    expect((await read).ok).toBe(true);
    expect(l2.stats.errors).toBe(0);
    expect(l2.breakerView().failures).toBe(0);
  });
});
