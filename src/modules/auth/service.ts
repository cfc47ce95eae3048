// Login: argon2id verification, a session row, and a signed JWT carrying user id, admin flag and session id.
import type { AppDeps } from "../../deps.ts";
import type { Principal } from "../../platform/http/auth.ts";
import { q } from "../../platform/db/tx.ts";
import { tooManyRequests, unauthorized } from "../../platform/http/errors.ts";
import { signJwt } from "../../platform/http/jwt.ts";
import { hashPassword } from "../users/service.ts";
import { usersRepo } from "../users/repository.ts";

export const TOKEN_TTL_SECONDS = 3600;

/**
 * A hash of a random password made with the same parameters as real ones: an unknown email is verified
 * against it, so it costs as long as a wrong password and the response time does not reveal accounts.
 */
let dummyHash: Promise<string> | undefined;
const getDummyHash = () => (dummyHash ??= hashPassword(crypto.randomUUID()));

const badCredentials = () => unauthorized("Incorrect email or password");

export async function login(deps: AppDeps, email: string, password: string) {
  const normalized = email.trim().toLowerCase();
  // Failed attempts per account are limited. Every attempt is counted before its password is checked (so
  // parallel guesses cannot all slip past the check) and a successful one is taken back.
  const limit = deps.config.RATE_LIMIT_LOGIN_PER_MINUTE;
  const limitKey = `login-failures:${normalized}`;
  if (limit > 0) {
    const r = await deps.rateLimiter.hit(limitKey, limit, 60);
    if (!r.allowed) throw tooManyRequests(r.retryAfter);
  }
  const user = await usersRepo.findByEmail(deps.database.db, normalized);
  const ok = await Bun.password.verify(password, user?.passwordHash ?? (await getDummyHash()));
  if (!user || !ok || !user.isActive) throw badCredentials();
  if (limit > 0) await deps.rateLimiter.forgive(limitKey);

  const now = Math.floor(Date.now() / 1000);
  const sessionId = await deps.auth.sessions.create(user.id, new Date(now * 1000), new Date((now + TOKEN_TTL_SECONDS) * 1000));
  await deps.database.write((tx) => q(usersRepo.touch(tx, user.id)));
  const token = signJwt(
    { sub: String(user.id), sid: sessionId, adm: user.isAdmin, iat: now, exp: now + TOKEN_TTL_SECONDS },
    deps.config.jwtSecret,
  );
  return { access_token: token, token_type: "bearer" as const, expires_in: TOKEN_TTL_SECONDS };
}

/** Ends the caller's session, or with `all` every session of the caller, on every instance. */
export async function logout(deps: AppDeps, principal: Principal, all: boolean): Promise<void> {
  if (all) await deps.auth.sessions.revokeAll(principal.userId);
  else await deps.auth.sessions.revoke(principal.sessionId, principal.userId);
}

/** Computes the dummy hash ahead of the first login, so that login is not the slow one. */
export const warmLogin = () => getDummyHash();
