import { t } from "elysia";

export const CacheStatsBody = t.Object(
  {
    l1: t.Object({
      size: t.Integer(),
      max_items: t.Integer(),
      hits: t.Integer(),
      misses: t.Integer(),
      evictions: t.Integer(),
      hit_ratio: t.Number({ minimum: 0, maximum: 1 }),
    }),
    l2: t.Object({ available: t.Boolean(), hits: t.Integer(), misses: t.Integer(), errors: t.Integer() }),
    bus: t.Object({ published: t.Integer(), received: t.Integer() }),
  },
  { description: "Counters of this instance since it started" },
);
