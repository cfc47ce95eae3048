// HS256 JSON Web Tokens with the algorithm pinned: a token whose header names anything else is refused.
import { createHmac, timingSafeEqual } from "node:crypto";

export interface Claims {
  /** User id. */
  sub: string;
  /** Session id (a row in `sessions`). */
  sid: string;
  adm: boolean;
  iat: number;
  exp: number;
}

const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");

function sign(input: string, secret: string): string {
  return createHmac("sha256", secret).update(input).digest("base64url");
}

export function signJwt(claims: Claims, secret: string): string {
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const input = `${HEADER}.${body}`;
  return `${input}.${sign(input, secret)}`;
}

/** Clock difference between instances tolerated on `iat` and `nbf`. */
const LEEWAY_SECONDS = 60;
/** No token of ours lives longer (login issues one-hour tokens); a longer one was not minted by login. */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

/**
 * Returns the claims of a valid token in its lifetime, else null. Beyond the signature: the header names no
 * `crit` extension (RFC 7515 4.1.11: we understand none), `iat` and `nbf` are not in the future, and `exp`
 * is at most MAX_TOKEN_LIFETIME_SECONDS after `iat`.
 */
export function verifyJwt(token: string, secret: string, nowSeconds = Math.floor(Date.now() / 1000)): Claims | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, b, s] = parts as [string, string, string];
  // The signature first: a forged token costs one HMAC and no parsing.
  const expected = Buffer.from(sign(`${h}.${b}`, secret));
  const given = Buffer.from(s);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
  let header: unknown;
  let parsed: unknown;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString());
    parsed = JSON.parse(Buffer.from(b, "base64url").toString());
  } catch {
    return null;
  }
  if (typeof header !== "object" || header === null || (header as { alg?: unknown }).alg !== "HS256") return null;
  if ((header as { crit?: unknown }).crit !== undefined) return null;
  // A payload that is not an object (null, a number, an array) is no token of ours.
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  const claims = parsed as Partial<Claims>;
  if (typeof claims.exp !== "number" || claims.exp <= nowSeconds) return null;
  if (typeof claims.sub !== "string" || typeof claims.sid !== "string" || typeof claims.adm !== "boolean") return null;
  if (typeof claims.iat !== "number" || claims.iat > nowSeconds + LEEWAY_SECONDS) return null;
  if (claims.exp - claims.iat > MAX_TOKEN_LIFETIME_SECONDS) return null;
  const nbf = (parsed as { nbf?: unknown }).nbf;
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > nowSeconds + LEEWAY_SECONDS)) return null;
  return claims as Claims;
}
