// The accounts as the login reads them: the root hands this to the auth feature, which never sees the users' SQL.
import type { Database } from "../../platform/db/client.ts";
import { q } from "../../platform/db/tx.ts";
import { usersRepo } from "./repository.ts";

export function userAccounts(database: Database) {
  return {
    async findByEmail(email: string): Promise<{ id: number; passwordHash: string; isActive: boolean; isAdmin: boolean } | undefined> {
      return usersRepo.findByEmail(database.db, email);
    },
    /** Records the account's activity (its last_active_at). */
    async touch(id: number): Promise<void> {
      await database.write((tx) => q(usersRepo.touch(tx, id)));
    },
  };
}
