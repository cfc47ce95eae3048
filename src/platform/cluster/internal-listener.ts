// /internal/* (the replica-to-primary channel) is served only on the private INTERNAL_PORT listener, which no
// Fly service exposes; on the public listener the app answers them as an unknown path (serve.ts marks them).
import type { Server } from "bun";
import { problem, problemResponse } from "../http/errors.ts";
import { requestIdOf } from "../http/request-context.ts";
import { pathnameOf } from "../observability/metrics.ts";

export function isInternalPath(pathname: string): boolean {
  return pathname === "/internal" || pathname.startsWith("/internal/");
}

/** Cheap first look (most URLs do not contain the word), then the exact pathname test. */
export function isInternalUrl(url: string): boolean {
  return url.includes("/internal") && isInternalPath(pathnameOf(url));
}

export function notFoundHere(request: Request): Response {
  return problemResponse(problem(404, "Not found"), { "x-request-id": requestIdOf(request) });
}

export function startInternalListener(opts: {
  port: number;
  hostname: string;
  reusePort: boolean;
  handle: (request: Request) => Promise<Response>;
}): Server<undefined> {
  return Bun.serve({
    port: opts.port,
    hostname: opts.hostname,
    reusePort: opts.reusePort,
    fetch: (request) => (isInternalUrl(request.url) ? opts.handle(request) : notFoundHere(request)),
  });
}
