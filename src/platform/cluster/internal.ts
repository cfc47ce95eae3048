// The private channel from a replica to the primary: where the primary is, how a replica calls it, and how
// the primary checks the INTERNAL_TOKEN bearer (constant-time). Used for the writes a replica makes on its own.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "../../config.ts";
import type { Role } from "./role.ts";

const INTERNAL_TIMEOUT_MS = 5_000;

type PrimaryConfig = Pick<Config, "PRIMARY_URL" | "FLY_APP_NAME" | "INTERNAL_PORT">;

/**
 * Base URL of the primary's private listener (not its LiteFS proxy: `fly-replay` does not apply to `.internal`
 * traffic). PRIMARY_URL when set, else on Fly `http://<primary>.vm.<FLY_APP_NAME>.internal:<INTERNAL_PORT>`, else null.
 */
export function primaryBaseUrl(config: PrimaryConfig, primaryName: string | null): string | null {
  if (config.PRIMARY_URL) return config.PRIMARY_URL.replace(/\/+$/, "");
  if (primaryName && config.FLY_APP_NAME) return `http://${primaryName}.vm.${config.FLY_APP_NAME}.internal:${config.INTERNAL_PORT}`;
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
  config: PrimaryConfig & Pick<Config, "INTERNAL_TOKEN">,
  role: Role,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = INTERNAL_TIMEOUT_MS,
): Promise<Response> {
  const token = config.INTERNAL_TOKEN;
  if (!token) throw new InternalCallError("INTERNAL_TOKEN is not set, so this replica cannot reach the primary");
  const base = primaryBaseUrl(config, role.primaryName());
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
