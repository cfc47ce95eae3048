// Memory: 100,000 distinct keys through an L1 capped at 10,000 items; resident memory before and after must
// stay bounded. Three more rounds of 100,000 new keys show the plateau. L1 alone (no Redis), values of ~1 KB.
//
//   bun run bench -- cache-memory
import { MemoryBus } from "../src/platform/cache/bus.ts";
import { TwoTierCache } from "../src/platform/cache/two-tier.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { table, writeResult } from "./lib.ts";

const KEYS = 100_000;
const MAX_ITEMS = 10_000;
const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

function snapshot(label: string, cache: TwoTierCache) {
  Bun.gc(true);
  const m = process.memoryUsage();
  return { point: label, "rss MB": mb(m.rss), "heap used MB": mb(m.heapUsed), "l1 items": cache.stats().l1.size, "l1 evictions": cache.stats().l1.evictions };
}

const cache = new TwoTierCache({
  instanceId: "memory-bench",
  logger: createLogger("silent"),
  l1: { enabled: true, maxItems: MAX_ITEMS, maxBytes: 1024 * 1024 * 1024, maxEntryBytes: 1024 * 1024 },
  ttlSeconds: 3600,
  staleGraceSeconds: 0,
  l2: null,
  bus: new MemoryBus(),
});
await cache.start();

const padding = "x".repeat(900);
const load = (i: number) => async () => ({ id: i, name: `user ${i}`, padding });

const rows = [snapshot("before", cache)];
for (let i = 0; i < KEYS; i++) await cache.getOrSet(`user:${i}:detail`, load(i), { tags: [`user:${i}`] });
rows.push(snapshot(`after ${KEYS.toLocaleString("en")} keys`, cache));
for (let pass = 2; pass <= 4; pass++) {
  for (let i = (pass - 1) * KEYS; i < pass * KEYS; i++) await cache.getOrSet(`user:${i}:detail`, load(i), { tags: [`user:${i}`] });
  rows.push(snapshot(`after ${(pass * KEYS).toLocaleString("en")} keys`, cache));
}
table(rows);

const grewFirst = rows[1]!["rss MB"] - rows[0]!["rss MB"];
const last = rows[rows.length - 1]!;
const grewSecond = last["rss MB"] - rows[1]!["rss MB"];
console.log(`\nRSS grew ${grewFirst.toFixed(1)} MB over the first ${KEYS} keys and ${grewSecond.toFixed(1)} MB over the next ${3 * KEYS}; heap used stays at ${last["heap used MB"]} MB; L1 holds ${last["l1 items"]} (cap ${MAX_ITEMS}).`);
if (last["l1 items"] > MAX_ITEMS) throw new Error("L1 exceeded its item cap");
writeResult("cache-memory", { keys: KEYS, max_items: MAX_ITEMS, value_bytes: JSON.stringify(await load(0)()).length, rows, rss_growth_first_mb: grewFirst, rss_growth_second_mb: grewSecond });
await cache.close();
