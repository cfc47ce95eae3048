import { inArray } from "drizzle-orm";
import type { Db } from "../../platform/db/client.ts";
import { users } from "../../platform/db/schema/index.ts";

export const adminRepo = {
  /** Which of `ids` are users. */
  async existingUserIds(db: Db, ids: readonly number[]): Promise<Set<number>> {
    const found = new Set<number>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await db.select({ id: users.id }).from(users).where(inArray(users.id, ids.slice(i, i + 500)));
      for (const r of rows) found.add(r.id);
    }
    return found;
  },
};
