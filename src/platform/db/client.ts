// Opens the libSQL database (a local SQLite file; on Fly the LiteFS mount) through Drizzle.
import { createClient, type Client } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import * as schema from "./schema/index.ts";
import { serializeWrites } from "./serialize-writes.ts";

export type Db = LibSQLDatabase<typeof schema>;
export interface Database {
  db: Db;
  client: Client;
  url: string;
  /** Absolute path of the SQLite file, or null for non-file URLs. */
  path: string | null;
  close(): void;
}

const BUSY_TIMEOUT_MS = 5_000;

export function filePathOf(url: string): string | null {
  if (!url.startsWith("file:")) return null;
  const rest = url.slice("file:".length).replace(/^\/\/(localhost)?/, "").split("?")[0]!;
  return rest === ":memory:" ? null : resolve(rest);
}

/**
 * Opens the database. WAL is a property of the file and is set once by the primary
 * (`setWal`); busy_timeout is set on every pooled connection through libsql's `timeout`;
 * foreign keys are on by default in libsql; synchronous=NORMAL is set on open.
 */
export async function openDatabase(url: string, opts: { setWal: boolean }): Promise<Database> {
  const path = filePathOf(url);
  if (path) mkdirSync(dirname(path), { recursive: true });
  // Writers of this process take turns (serialize-writes.ts explains the deadlock this prevents).
  const client = serializeWrites(createClient({ url, timeout: BUSY_TIMEOUT_MS }));
  if (opts.setWal && path) await client.execute("PRAGMA journal_mode=WAL");
  await client.execute("PRAGMA synchronous=NORMAL");
  await client.execute("PRAGMA foreign_keys=ON");
  const db = drizzle(client, { schema });
  return { db, client, url, path, close: () => client.close() };
}
