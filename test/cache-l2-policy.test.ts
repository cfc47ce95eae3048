// The adaptive L2 policy: an L1 miss asks the L2 only while its measured round trip is below the local load
// it would save. A far region (Redis behind a delay proxy) reads its own replica; a near one keeps its L2.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { delayProxy } from "../lab/regions/delay-proxy.ts";
import { AdaptiveL2Policy } from "../src/platform/cache/l2-policy.ts";
import { makeApp, REDIS_URL, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

describe("AdaptiveL2Policy", () => {
  test("skips the L2 until its cost is known, then uses it only while it is cheaper than the load it saves", async () => {
    let delay = 0;
    const policy = new AdaptiveL2Policy({ probe: () => Bun.sleep(delay), probeIntervalMs: 20, failureMs: 50 });
    expect(policy.useL2()).toBe(false);
    policy.observeLoad(5);
    policy.start();
    closers.push(() => policy.stop());
    await waitUntil(() => policy.useL2(), 5_000, "the policy to use the L2");
    expect(policy.useL2()).toBe(true);
    // The hop becomes dearer than the read (a far region, or a slow Redis): the L2 is skipped.
    delay = 30;
    await waitUntil(() => !policy.useL2(), 5_000, "the policy to skip the L2");
    expect(policy.useL2()).toBe(false);
    expect(policy.stats().using_l2).toBe(false);
    // And comes back when it is cheap again.
    delay = 0;
    await waitUntil(() => policy.useL2(), 5_000, "the policy to use the L2");
    expect(policy.useL2()).toBe(true);
  });

  test("an L2 that rarely hits is not worth a hop that costs nearly the load", () => {
    const policy = new AdaptiveL2Policy({ probe: async () => {}, failureMs: 50 });
    policy.observeLoad(2);
    for (let i = 0; i < 30; i++) policy.observeL2(1.5, true, false);
    expect(policy.useL2()).toBe(false);
    for (let i = 0; i < 30; i++) policy.observeL2(0.2, true, true);
    expect(policy.useL2()).toBe(true);
  });

  test("a failed read or probe counts at least the L2 timeout", () => {
    const policy = new AdaptiveL2Policy({ probe: async () => {}, failureMs: 50 });
    policy.observeLoad(3);
    for (let i = 0; i < 30; i++) policy.observeL2(1, false, false);
    expect(policy.stats().l2_rtt_ms!).toBeGreaterThan(40);
    expect(policy.useL2()).toBe(false);
  });
});

describe("a far region (Redis 60 ms away)", () => {
  test("its L1 misses read the local database and never wait on the L2", async () => {
    const url = new URL(REDIS_URL);
    const far = delayProxy({ name: "far->redis", rttMs: 60, targetPort: Number(url.port || 6379) });
    closers.push(() => far.close());
    const remote: TestApp = await makeApp({ REDIS_URL: `redis://127.0.0.1:${far.port}`, CACHE_L1_ENABLED: "false" });
    closers.push(() => remote.close());
    const v = await remote.user();
    const l2Reads = async (t: TestApp) => {
      const s = (await t.deps.cache.stats()) as { l2: { hits: number; misses: number } };
      return s.l2.hits + s.l2.misses;
    };
    const before = await l2Reads(remote);
    for (let i = 0; i < 10; i++) {
      const r = await remote.request("GET", `/api/v1/users/${v.id}`, { token: v.token });
      expect(r.status).toBe(200);
      expect(r.headers.get("x-cache")).toBe("miss");
    }
    expect(await l2Reads(remote)).toBe(before);
  }, 20_000);
});
