// L1 on its own: recency order, eviction by count and by bytes, TTL and stale grace, tags.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { approxBytes, Lru } from "../src/platform/cache/lru.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const big = { maxItems: 1000, maxBytes: 1 << 30, maxEntryBytes: 1 << 20 };
const put = (l: Lru, key: string, now = 0, ttl = 1000, grace = 0, tags: string[] = []) =>
  l.set(key, { key }, JSON.stringify({ key }), tags, now + ttl, now + ttl + grace);

describe("L1 LRU", () => {
  test("a get makes an entry most recent; the least recent is evicted at the item bound", () => {
    const l = new Lru({ ...big, maxItems: 3 });
    put(l, "a");
    put(l, "b");
    put(l, "c");
    expect(l.keys()).toEqual(["c", "b", "a"]);
    expect(l.get("a", 1)?.value).toEqual({ key: "a" });
    expect(l.keys()).toEqual(["a", "c", "b"]);
    put(l, "d");
    expect(l.keys()).toEqual(["d", "a", "c"]);
    expect(l.get("b", 1)).toBeUndefined();
    expect(l.evictions).toBe(1);
    expect(l.size).toBe(3);
  });

  test("setting an existing key replaces it and makes it most recent", () => {
    const l = new Lru(big);
    put(l, "a");
    put(l, "b");
    l.set("a", 2, "2", [], 1000, 1000);
    expect(l.keys()).toEqual(["a", "b"]);
    expect(l.get("a", 1)?.json).toBe("2");
    expect(l.size).toBe(2);
  });

  test("an entry expires at its TTL; inside the grace it is only available as stale", () => {
    const l = new Lru(big);
    put(l, "a", 0, 100, 50);
    expect(l.get("a", 99)).toBeDefined();
    expect(l.get("a", 100)).toBeUndefined();
    expect(l.stale("a", 120)?.value).toEqual({ key: "a" });
    expect(l.stale("a", 150)).toBeUndefined();
    expect(l.size).toBe(0);
  });

  test("bounded by approximate bytes, and an entry over the per-entry limit is not stored", () => {
    const one = approxBytes("k0", JSON.stringify({ key: "k0" }));
    const l = new Lru({ maxItems: 1000, maxBytes: one * 3, maxEntryBytes: one + 1 });
    for (let i = 0; i < 10; i++) put(l, `k${i}`);
    expect(l.size).toBe(3);
    expect(l.bytes).toBeLessThanOrEqual(one * 3);
    expect(l.keys()).toEqual(["k9", "k8", "k7"]);
    expect(l.set("huge", "x".repeat(100), JSON.stringify("x".repeat(100)), [], 1000, 1000)).toBe(false);
    expect(l.get("huge", 1)).toBeUndefined();
  });

  test("deleteTags drops every key carrying the tag and leaves the others", () => {
    const l = new Lru(big);
    put(l, "user:1:posts:1:10", 0, 1000, 0, ["user:1"]);
    put(l, "user:1:posts:2:5", 0, 1000, 0, ["user:1"]);
    put(l, "user:2:detail", 0, 1000, 0, ["user:2"]);
    expect(l.deleteTags(["user:1"])).toBe(2);
    expect(l.keys()).toEqual(["user:2:detail"]);
    expect(l.deleteTags(["user:1"])).toBe(0);
  });

  test("a hit returns the same prebuilt result object (no allocation per hit)", () => {
    const l = new Lru(big);
    put(l, "a");
    expect(l.get("a", 1)!.hit).toBe(l.get("a", 2)!.hit);
    expect(l.get("a", 3)!.hit.source).toBe("hit-l1");
  });
});
