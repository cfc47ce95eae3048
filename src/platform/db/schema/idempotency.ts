// Idempotency keys of POST and PATCH requests (platform/http/idempotency.ts): the first response, replayed to
// a retry with the same key. In SQLite, beside the writes they protect: a Redis wipe forgets none.
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    /** Whose key it is (a hash of the Authorization header): two callers' keys never meet. */
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    /** Hash of method, path and body: the same key with another request is refused. */
    fingerprint: text("fingerprint").notNull(),
    state: text("state").$type<"running" | "done">().notNull(),
    /** While running: when the claim is taken for abandoned (its process died). ms since epoch. */
    lockedUntil: integer("locked_until").notNull(),
    status: integer("status"),
    headers: text("headers", { mode: "json" }).$type<[string, string][]>(),
    body: text("body"),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_expires_idx").on(t.expiresAt)],
);
