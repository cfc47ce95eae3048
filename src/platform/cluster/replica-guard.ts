// On a LiteFS replica the database is read-only. The LiteFS proxy normally replays writes to the primary
// before they reach the app; a write that gets here anyway answers 409 with `fly-replay: instance=<primary>`
// so Fly's edge can replay it there. While no primary is known (a failover, LiteFS disconnected) it answers
// 503 with Retry-After: the write would fail against the read-only file, and 500 would blame the request.
// /internal (the replica->primary channel) and /health are left alone.
import { Elysia } from "elysia";
import { AppError, conflict } from "../http/errors.ts";
import { pathnameOf } from "../observability/metrics.ts";
import { isInternalPath } from "./internal-listener.ts";
import type { Role } from "./role.ts";

const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** True for paths the guard never touches. */
export function isExemptPath(pathname: string): boolean {
  return isInternalPath(pathname) || pathname === "/health" || pathname.startsWith("/health/");
}

/** True for the requests the guard answers 409 on a replica (the OpenAPI document lists that 409 by it). */
export function replicaGuardApplies(method: string, pathname: string): boolean {
  return !READ_METHODS.has(method) && !isExemptPath(pathname);
}

export function replicaGuard(role: Role) {
  return new Elysia({ name: "replica-guard" }).onRequest(({ request }) => {
    if (READ_METHODS.has(request.method)) return;
    const state = role.state();
    if (state.kind === "primary") return;
    if (!replicaGuardApplies(request.method, pathnameOf(request.url))) return;
    if (state.kind === "undecided") throw noPrimary();
    throw conflict(`This instance is a read-only replica; writes go to the primary (${state.primary}).`, {
      "fly-replay": `instance=${state.primary}`,
    });
  });
}

/** Seconds a client waits before retrying a write while no primary is known: about one lease hand-over. */
export const NO_PRIMARY_RETRY_AFTER_SECONDS = 5;

export const noPrimary = () =>
  new AppError(503, "No primary is known right now (failover in progress); retry the write later", undefined, {
    "retry-after": String(NO_PRIMARY_RETRY_AFTER_SECONDS),
  });
