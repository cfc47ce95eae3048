// The contract's access rules on a caller: the owner of a user's resources, or an administrator.
import type { Principal } from "./auth.ts";
import { forbidden } from "./errors.ts";

/** Owner-or-admin rule of the contract. */
export function assertOwnerOrAdmin(principal: Principal, userId: number): void {
  if (principal.userId !== userId && !principal.isAdmin) throw forbidden("Only the owner or an administrator may do this");
}

export function assertOwner(principal: Principal, userId: number): void {
  if (principal.userId !== userId) throw forbidden("Only the owner may do this");
}
