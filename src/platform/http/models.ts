// Schemas shared by several modules.
import { t } from "elysia";

export const ProblemSchema = t.Object(
  {
    type: t.String(),
    title: t.String(),
    status: t.Integer(),
    detail: t.String(),
    errors: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String() }))),
  },
  { description: "RFC 9457 problem details (application/problem+json)" },
);

export const IdParams = t.Object({ id: t.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });

export const PageQuery = t.Object(
  {
    page: t.Optional(t.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, default: 10 })),
  },
  { additionalProperties: false },
);

export const page = <T extends Parameters<typeof t.Array>[0]>(item: T) =>
  t.Object({ items: t.Array(item), page: t.Integer(), limit: t.Integer(), total: t.Integer() });

/** Problem responses a route may give, for the OpenAPI document. */
export const problems = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, ProblemSchema])) as Record<number, typeof ProblemSchema>;
