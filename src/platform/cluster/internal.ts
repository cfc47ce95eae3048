// The private channel from a replica to the primary: where the primary is, how a replica calls it, and how
// the primary checks the INTERNAL_TOKEN bearer (constant-time). Used for the writes a replica makes on its own.
import { createHash, timingSafeEqual } from "node:crypto";
import type { BreakerSettings } from "../resilience/breakers.ts";
import type { Role } from "./role.ts";

const INTERNAL_TIMEOUT_MS = 5_000;

/** How a replica reaches the primary's private listener (PRIMARY_URL, FLY_APP_NAME, INTERNAL_PORT, INTERNAL_TOKEN). */
export interface PrimaryLink {
  /** The primary's base URL when it is fixed (PRIMARY_URL). */
  url?: string;
  /** The Fly app (FLY_APP_NAME): the primary is then `<its machine>.vm.<app>.internal`. */
  flyApp?: string;
  /** The private listener's port on every instance. */
  internalPort: number;
  /** The bearer the primary expects; without it a replica cannot call. */
  token?: string;
  /** The circuit breaker's settings for calls to the primary (BREAKER_PRIMARY). */
  breaker: BreakerSettings;
}

/**
 * Base URL of the primary's private listener (not its LiteFS proxy: `fly-replay` does not apply to `.internal`
 * traffic). PRIMARY_URL when set, else on Fly `http://<primary>.vm.<FLY_APP_NAME>.internal:<INTERNAL_PORT>`, else null.
 */
export function primaryBaseUrl(link: Omit<PrimaryLink, "breaker" | "token">, primaryName: string | null): string | null {
  if (link.url) return link.url.replace(/\/+$/, "");
  if (primaryName && link.flyApp) return `http://${primaryName}.vm.${link.flyApp}.internal:${link.internalPort}`;
  return null;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** True when the Authorization header carries exactly `Bearer <token>`; compares digests in constant time. */
export function internalTokenMatches(header: string | null, token: string): boolean {
  if (!header || header.length < 8 || header.slice(0, 7).toLowerCase() !== "bearer ") return false;
  return timingSafeEqual(digest(header.slice(7).trim()), digest(token));
}

export class InternalCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "InternalCallError";
  }
}

/** Calls `path` on the current primary. Throws InternalCallError on no route, a network error or a non-2xx. */
export async function callPrimary(
  link: Omit<PrimaryLink, "breaker">,
  role: Role,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = INTERNAL_TIMEOUT_MS,
): Promise<Response> {
  const token = link.token;
  if (!token) throw new InternalCallError("INTERNAL_TOKEN is not set, so this replica cannot reach the primary");
  const base = primaryBaseUrl(link, role.primaryName());
  if (!base) throw new InternalCallError("primary unknown: set PRIMARY_URL (or FLY_APP_NAME on Fly) and make sure .primary names it");
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new InternalCallError(`${method} ${base}${path}: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    throw new InternalCallError(`${method} ${base}${path}: HTTP ${res.status} ${text.slice(0, 200)}`, res.status);
  }
  return res;
}
