// On a LiteFS replica the database is read-only. The LiteFS proxy normally replays writes to the primary
// before they reach the app; a write that gets here anyway answers 409 with `fly-replay: instance=<primary>`
// so Fly's edge can replay it there. /internal (the replica->primary channel) and /health are left alone.
import { Elysia } from "elysia";
import { conflict } from "../http/errors.ts";
import { pathnameOf } from "../observability/metrics.ts";
import type { Role } from "./role.ts";

const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** True for paths the guard never touches. */
export function isExemptPath(pathname: string): boolean {
  return (
    pathname === "/internal" ||
    pathname.startsWith("/internal/") ||
    pathname === "/health" ||
    pathname.startsWith("/health/")
  );
}

export function replicaGuard(role: Role) {
  return new Elysia({ name: "replica-guard" }).onRequest(({ request }) => {
    if (READ_METHODS.has(request.method)) return;
    const primary = role.primaryName();
    if (primary === null) return;
    if (isExemptPath(pathnameOf(request.url))) return;
    throw conflict(`This instance is a read-only replica; writes go to the primary (${primary}).`, {
      "fly-replay": `instance=${primary}`,
    });
  });
}
