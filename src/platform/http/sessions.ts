// Login sessions: the row a login writes (its id is the token's `sid`), the state a request checks on every
// authenticated call, and revocation. The state is read through the cache (L1 while the bus is live, kept
// coherent by it; L2 next; the database last), so the hot path does no database read, and a revocation
// (logout, password change, deletion, admin rights changed) reaches every instance through the bus.
import { and, eq, sql } from "drizzle-orm";
import type { Cache } from "../cache/port.ts";
import { keyMemo } from "../cache/key-memo.ts";
import type { Database, Db } from "../db/client.ts";
import { q } from "../db/tx.ts";
import { sessions, users } from "../db/schema/index.ts";
import { preparedFor } from "../db/step.ts";

const cacheKeys = {
  session: keyMemo((sid: string) => `session:${sid}`),
  /** Every cached session state of a user: invalidated when their sessions are revoked or their rights change. */
  sessionsTag: (userId: number) => `sessions:${userId}`,
};

// Read on every authenticated request the cache cannot answer: prepared once per connection.
const statements = preparedFor((db) => ({
  state: db
    .select({ userId: sessions.userId, expiresAt: sessions.expiresAt, isAdmin: users.isAdmin, isActive: users.isActive })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sql.placeholder("sid")))
    .limit(1)
    .prepare(),
  insert: db
    .insert(sessions)
    .values({ id: sql.placeholder("id"), userId: sql.placeholder("userId"), createdAt: sql.placeholder("createdAt"), expiresAt: sql.placeholder("expiresAt") })
    .prepare(),
}));

/** What a valid session lets its token do now (admin rights are the account's current ones). */
export interface SessionState {
  userId: number;
  isAdmin: boolean;
}

/**
 * While the cache's L1 is not live (the bus is down, or L1 is off), a state is remembered here for at most this
 * long: the bound on how stale a revocation can be seen when the bus cannot say so. While L1 is live this memo
 * is neither read nor filled: the bus reaches L1 entries, not this map, so a state kept here would outlive a
 * revocation sent through the bus.
 */
export const SESSION_MEMO_MS = 1_000;
const MEMO_MAX = 10_000;

export class Sessions {
  private readonly memo = new Map<string, { state: SessionState | null; until: number }>();

  constructor(
    private readonly database: Database,
    private readonly cache: Cache,
  ) {}

  /** Writes the row of a new login; its id goes into the token. */
  async create(userId: number, createdAt: Date, expiresAt: Date): Promise<string> {
    const id = crypto.randomUUID();
    const row = { id, userId, createdAt: createdAt.toISOString(), expiresAt: expiresAt.toISOString() };
    await this.database.write((tx) => q(statements(tx).insert.run(row)));
    return id;
  }

  /** The session's state, or null when it is revoked, expired, or its account is gone or inactive. */
  async state(sid: string, userId: number): Promise<SessionState | null> {
    const now = Date.now();
    if (this.cache.l1Live !== true) {
      const m = this.memo.get(sid);
      if (m !== undefined && m.until > now) return m.state;
    }
    const r = await this.cache.getOrSet(cacheKeys.session(sid), () => this.load(sid), { tags: [cacheKeys.sessionsTag(userId)] });
    // Checked again: the bus may have gone down during the load, and then nothing filled L1.
    if (this.cache.l1Live !== true) this.remember(sid, r.value, now);
    return r.value;
  }

  /**
   * Synchronously, from memory only (L1 while it is live, else the memo): the state, null when known revoked
   * (a cached null), undefined when not in memory.
   */
  peek(sid: string): SessionState | null | undefined {
    if (this.cache.l1Live !== true) {
      const m = this.memo.get(sid);
      if (m !== undefined && m.until > Date.now()) return m.state;
    }
    const hit = this.cache.peek?.(cacheKeys.session(sid));
    return hit === undefined ? undefined : (hit.value as SessionState | null);
  }

  /**
   * Ends one session (logout). The user's tag is invalidated, not the session's key: a key deletion cannot stop
   * another instance's load that read the row just before from writing its entry to L2 afterwards, where it
   * would be valid again for every instance; an entry carrying the tag's old token is ignored. The user's other
   * sessions are read again once.
   */
  async revoke(sid: string, userId: number): Promise<void> {
    await this.database.write((tx) => q(tx.delete(sessions).where(and(eq(sessions.id, sid), eq(sessions.userId, userId))).run()));
    this.memo.delete(sid);
    await this.cache.invalidateTags([cacheKeys.sessionsTag(userId)]);
  }

  /**
   * Ends every session of a user (logout everywhere, password change), or, with `deleteRows: false`, only makes
   * every instance read their state again (account deleted, admin rights or activity changed).
   */
  async revokeAll(userId: number, opts: { deleteRows?: boolean } = {}): Promise<void> {
    if (opts.deleteRows ?? true) await this.database.write((tx) => q(this.deleteAllRows(tx, userId)));
    await this.forgetAll(userId);
  }

  /**
   * Deletes every session row of a user inside the caller's write body (yield it with `q`), for a write that must
   * end the sessions with its own change (a password change): both are stored, or neither. Once it commits,
   * forgetAll() makes every instance read their state again.
   */
  deleteAllRows(tx: Db, userId: number) {
    return tx.delete(sessions).where(eq(sessions.userId, userId)).run();
  }

  /** Makes every instance read the states of a user's sessions again (after their rows changed or went). */
  async forgetAll(userId: number): Promise<void> {
    for (const [sid, m] of this.memo) if (m.state === null || m.state.userId === userId) this.memo.delete(sid);
    await this.cache.invalidateTags([cacheKeys.sessionsTag(userId)]);
  }

  private async load(sid: string): Promise<SessionState | null> {
    const row = await statements(this.database.db).state.get({ sid });
    if (!row || !row.isActive || Date.parse(row.expiresAt) <= Date.now()) return null;
    return { userId: row.userId, isAdmin: row.isAdmin };
  }

  private remember(sid: string, state: SessionState | null, now: number): void {
    if (this.memo.size >= MEMO_MAX) {
      for (const [k, m] of this.memo) if (m.until <= now) this.memo.delete(k);
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
    }
    this.memo.set(sid, { state, until: now + SESSION_MEMO_MS });
  }
}
