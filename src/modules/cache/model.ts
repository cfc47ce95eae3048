import { t } from "elysia";
import { Int } from "../../platform/http/models.ts";

export const CacheStatsBody = t.Object(
  {
    l1: t.Object({
      size: Int(),
      max_items: Int(),
      hits: Int(),
      misses: Int(),
      evictions: Int(),
      hit_ratio: t.Number({ minimum: 0, maximum: 1 }),
    }),
    l2: t.Object({ available: t.Boolean(), hits: Int(), misses: Int(), errors: Int() }),
    bus: t.Object({ published: Int(), received: Int() }),
  },
  { description: "Counters of this instance since it started" },
);
