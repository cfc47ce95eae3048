// The contract's access levels of a route, declared on it (the auth macro's `auth`, a declared read's or write's
// `auth`) and decided by one function, which the app's auth macro and the fast paths both call.
import { forbidden, type AppError } from "./errors.ts";
import { Value } from "@sinclair/typebox/value";
import { UserId } from "./models.ts";

/**
 * "user": any signed-in caller; "admin": administrators; "owner": the user whose id is the path's `:id`;
 * "owner-or-admin": that user or an administrator.
 */
export type AuthLevel = "user" | "admin" | "owner" | "owner-or-admin";

/** What the levels look at of a principal (auth.ts imports this file: no import back). */
export interface Caller {
  userId: number;
  isAdmin: boolean;
}

/**
 * The 403 for `principal` on a route of `level`, or undefined when it may go on. `pathId` is the path's `:id` as
 * sent, before validation: the id rule (DecimalInt) takes only the canonical decimal, so the caller's own id is
 * exactly its decimal text. A text the user-id rule (UserId) refuses is left to validation, which answers it 422
 * as before; the owner levels are for routes whose `:id` follows that rule (IdParams).
 */
export function refusal(level: AuthLevel, principal: Caller, pathId: string | undefined): AppError | undefined {
  switch (level) {
    case "user":
      return undefined;
    case "admin":
      return principal.isAdmin ? undefined : forbidden("Administrators only");
    case "owner":
    case "owner-or-admin": {
      if (pathId === String(principal.userId) || (level === "owner-or-admin" && principal.isAdmin)) return undefined;
      // Refused either way (403 or 422): validation answers what the id rule refuses, as it did before this check.
      if (pathId !== undefined && !Value.Check(UserId, pathId)) return undefined;
      // Without an `:id`, nobody's own: only an administrator, where the level lets one in, goes on.
      return level === "owner" ? forbidden("Only the owner may do this") : forbidden("Only the owner or an administrator may do this");
    }
  }
}
