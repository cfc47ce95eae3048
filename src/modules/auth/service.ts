// Login: argon2id verification, a session row, and a signed JWT carrying user id, admin flag and session id.
import type { Auth, Principal } from "../../platform/http/auth.ts";
import { unauthorized } from "../../platform/http/errors.ts";
import type { RateLimiter, RatePolicy } from "../../platform/http/rate-limit.ts";
import { rateLimited, ratePolicies, type RateLimitSettings } from "../../platform/http/rate-limits.ts";
import { signJwt } from "../../platform/http/jwt.ts";
import { hashPassword } from "../../platform/http/passwords.ts";
import type { WorkGate } from "../../platform/http/work-gate.ts";

export const TOKEN_TTL_SECONDS = 3600;

/** The accounts as the login reads them (the root hands over the users feature's). */
export interface Accounts {
  findByEmail(email: string): Promise<{ id: number; passwordHash: string; isActive: boolean; isAdmin: boolean } | undefined>;
  /** Records the account's activity after a login. */
  touch(id: number): Promise<void>;
}

/** What login and logout need. */
export interface AuthDeps {
  accounts: Accounts;
  /** Sessions, and the auth macro of the routes. */
  auth: Auth;
  /** Bounds password verification (beyond it: 503 at once). */
  hashing: WorkGate;
  rateLimiter: RateLimiter;
  /** The token signing secret; the header carrying the client IP behind a trusted proxy; the login limits. */
  config: RateLimitSettings & { jwtSecret: string; CLIENT_IP_HEADER?: string };
}

/**
 * A hash of a random password made with the same parameters as real ones: an unknown email is verified
 * against it, so it costs as long as a wrong password and the response time does not reveal accounts.
 */
let dummyHash: Promise<string> | undefined;
const getDummyHash = () => (dummyHash ??= hashPassword(crypto.randomUUID()));

const badCredentials = () => unauthorized("Incorrect email or password");

export async function login(deps: AuthDeps, email: string, password: string, client: string) {
  const normalized = email.trim().toLowerCase();
  // Failed attempts are limited per account and client (a stranger elsewhere cannot lock the owner out), and
  // per account from everywhere at a higher bound. Every attempt is counted before its password is checked
  // (parallel guesses cannot all slip past); one whose password turned out right, or was never checked (the
  // hashing bound's 503, a failure on the way), is given back: only a wrong guess moves toward a lock-out.
  const policies = ratePolicies(deps.config);
  const counted: [string, RatePolicy][] = [];
  if (policies.login) counted.push([`login:${normalized}|${client}`, policies.login]);
  if (policies.loginAccount) counted.push([`login-account:${normalized}`, policies.loginAccount]);
  const decisions = await Promise.all(counted.map(([key, policy]) => deps.rateLimiter.shared(key, policy)));
  // Not awaited: the answer does not depend on it (forgive never throws).
  const giveBack = () => {
    counted.forEach(([key, policy], i) => {
      if (decisions[i]!.allowed) void deps.rateLimiter.forgive(key, policy);
    });
  };
  const refused = decisions.find((d) => !d.allowed);
  if (refused !== undefined) {
    giveBack();
    throw rateLimited(refused);
  }
  let user: Awaited<ReturnType<Accounts["findByEmail"]>>;
  let ok: boolean;
  try {
    user = await deps.accounts.findByEmail(normalized);
    const hash = user?.passwordHash ?? (await getDummyHash());
    ok = await deps.hashing.run(() => Bun.password.verify(password, hash));
  } catch (err) {
    giveBack();
    throw err;
  }
  if (!user || !ok || !user.isActive) throw badCredentials();
  giveBack();

  const now = Math.floor(Date.now() / 1000);
  const sessionId = await deps.auth.sessions.create(user.id, new Date(now * 1000), new Date((now + TOKEN_TTL_SECONDS) * 1000));
  await deps.accounts.touch(user.id);
  const token = signJwt(
    { sub: String(user.id), sid: sessionId, adm: user.isAdmin, iat: now, exp: now + TOKEN_TTL_SECONDS },
    deps.config.jwtSecret,
  );
  return { access_token: token, token_type: "bearer" as const, expires_in: TOKEN_TTL_SECONDS };
}

/** Ends the caller's session, or with `all` every session of the caller, on every instance. */
export async function logout(deps: AuthDeps, principal: Principal, all: boolean): Promise<void> {
  if (all) await deps.auth.sessions.revokeAll(principal.userId);
  else await deps.auth.sessions.revoke(principal.sessionId, principal.userId);
}

/** Computes the dummy hash ahead of the first login, so that login is not the slow one. */
export const warmLogin = () => getDummyHash();
