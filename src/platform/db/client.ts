// Opens the database. A local `file:` URL (the default, and the LiteFS mount on Fly) runs on bun:sqlite: one
// synchronous connection, statements prepared once, write transactions that never wait on the event loop. A
// `libsql:`/`http(s):`/`ws(s):` URL (a libSQL server, Turso) runs on @libsql/client. The repositories are
// written once against Drizzle's builders, which both accept (see tx.ts for transactions).
import { Database as BunDatabase } from "bun:sqlite";
import { createClient, type Client } from "@libsql/client";
import type { BaseSQLiteDatabase } from "drizzle-orm/sqlite-core";
import { drizzle as drizzleBun } from "drizzle-orm/bun-sqlite";
import { drizzle as drizzleLibsql } from "drizzle-orm/libsql";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import * as schema from "./schema/index.ts";
import { driveAsync, driveSync, type TxBody } from "./tx.ts";
import { busyFor, isBusy } from "./errors.ts";
import { checkpointer, DEFAULT_CHECKPOINTS, type CheckpointSettings, type CheckpointStats } from "./checkpoint.ts";
import { committed, writeCheck } from "./write-turn.ts";

export type Schema = typeof schema;
/** A Drizzle handle on either driver: the database, or the transaction a write body receives. */
export type Db = BaseSQLiteDatabase<"sync" | "async", unknown, Schema>;
export type Driver = "bun:sqlite" | "libsql";

/** The subset of a libSQL client the rest of the code (health check, tests) uses, on either driver. */
export interface SqlClient {
  execute(stmt: string | { sql: string; args?: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface Database {
  db: Db;
  driver: Driver;
  client: SqlClient;
  url: string;
  /** Absolute path of the SQLite file, or null for non-file URLs. */
  path: string | null;
  /**
   * Runs `body` as one write transaction (BEGIN IMMEDIATE). While another process holds the write lock it
   * retries with backoff off the event loop, then fails with a 503-class error; nothing of it is committed then.
   * Once it commits, the request it runs for gives back its write-lane turn (write-turn.ts).
   */
  write<T>(body: TxBody<Db, T>): Promise<T>;
  /** What the WAL checkpointer did (checkpoint.ts); null where there is none (libSQL, an in-memory database). */
  checkpoints(): CheckpointStats | null;
  close(): void;
}

export interface OpenOptions {
  /** WAL is a property of the file: set by the primary only (a LiteFS replica cannot write it). */
  setWal: boolean;
  /** How long a write keeps retrying while another process holds the write lock. */
  writeWaitMs?: number;
  /** Forces a driver (tests run the libSQL path on a file: URL this way). */
  driver?: Driver;
  /** WAL checkpoints off the event loop on a bun:sqlite file (checkpoint.ts); tests shrink the bounds. */
  checkpoints?: Partial<Omit<CheckpointSettings, "path">>;
}

export const DEFAULT_WRITE_WAIT_MS = 3_000;
const BACKOFF_MAX_MS = 50;
const PAGE_CACHE_KIB = 64 * 1024;

export function filePathOf(url: string): string | null {
  if (!url.startsWith("file:")) return null;
  const rest = url.slice("file:".length).replace(/^\/\/(localhost)?/, "").split("?")[0]!;
  return rest === ":memory:" ? null : resolve(rest);
}

export const driverFor = (url: string): Driver => (url.startsWith("file:") ? "bun:sqlite" : "libsql");

/**
 * What follows a COMMIT: the checkpointer's count (`extra`) and the request's turn (write-turn.ts). The write is
 * stored by then, so nothing here may turn it into an error for its caller: a failure is dropped (the checkpointer
 * has its backstop, and a turn not given back here is given back when the request is answered).
 */
function afterCommit(extra?: () => void): void {
  try {
    extra?.();
  } catch {
    // See above: the commit stands.
  }
  try {
    committed();
  } catch {
    // See above: the commit stands.
  }
}

/**
 * Retries `attempt` while it fails with SQLITE_BUSY before its body started (BEGIN IMMEDIATE found the lock
 * taken), sleeping between tries so the event loop keeps serving; gives up after `waitMs`.
 */
async function withBusyRetry<T>(waitMs: number, attempt: (started: { value: boolean }) => Promise<T> | T): Promise<T> {
  const deadline = performance.now() + waitMs;
  let delay = 1;
  for (;;) {
    const started = { value: false };
    try {
      return await attempt(started);
    } catch (err) {
      if (started.value || !isBusy(err)) throw err;
      const left = deadline - performance.now();
      if (left <= 0) throw busyFor(waitMs, err);
      await Bun.sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    }
  }
}

function openBun(url: string, path: string | null, opts: OpenOptions): Database {
  const sqlite = new BunDatabase(path ?? ":memory:", { create: true, strict: true });
  // Never sleep in SQLite's busy handler: it would sleep on the event loop. Busy writes are retried in write().
  sqlite.exec("PRAGMA busy_timeout = 0");
  if (opts.setWal && path) sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec("PRAGMA synchronous = NORMAL");
  sqlite.exec("PRAGMA foreign_keys = ON");
  // SQLite's default page cache is 2 MiB: on a large database every index walk would go through the kernel.
  sqlite.exec(`PRAGMA cache_size = -${PAGE_CACHE_KIB}`);
  const checkpoints = path ? checkpointer({ ...DEFAULT_CHECKPOINTS, ...opts.checkpoints, path }) : null;
  if (checkpoints) sqlite.exec(`PRAGMA wal_autocheckpoint = ${opts.checkpoints?.backstopFrames ?? DEFAULT_CHECKPOINTS.backstopFrames}`);
  const db = drizzleBun(sqlite, { schema }) as unknown as Db;
  const begin = sqlite.prepare("BEGIN IMMEDIATE");
  const commit = sqlite.prepare("COMMIT");
  const rollback = sqlite.prepare("ROLLBACK");
  const waitMs = opts.writeWaitMs ?? DEFAULT_WRITE_WAIT_MS;
  const runOnce = <T>(body: TxBody<Db, T>, started: { value: boolean }): T => {
    begin.run();
    started.value = true;
    let result: T;
    try {
      result = driveSync(body(db));
      commit.run();
    } catch (err) {
      if (sqlite.inTransaction) rollback.run();
      throw err;
    }
    afterCommit(() => checkpoints?.committed());
    return result;
  };
  const client: SqlClient = {
    async execute(stmt) {
      const { sql, args = [] } = typeof stmt === "string" ? { sql: stmt } : stmt;
      return { rows: sqlite.query(sql).all(...(args as never[])) as Record<string, unknown>[] };
    },
  };
  return {
    db,
    driver: "bun:sqlite",
    client,
    url,
    path,
    write: (body) => {
      // The common case (no lock held elsewhere, the request's check answered from memory) commits without a
      // single await.
      try {
        const check = writeCheck();
        if (check instanceof Promise) return check.then(() => withBusyRetry(waitMs, (started) => runOnce(body, started)));
        const started = { value: false };
        try {
          return Promise.resolve(runOnce(body, started));
        } catch (err) {
          if (started.value || !isBusy(err)) throw err;
        }
      } catch (err) {
        return Promise.reject(err);
      }
      return withBusyRetry(waitMs, (started) => runOnce(body, started));
    },
    checkpoints: () => checkpoints?.stats() ?? null,
    close: () => {
      checkpoints?.close();
      // close(true) finalizes the prepared statements (BEGIN/COMMIT above, drizzle's): plain close() leaves the
      // connection and its file handles open until they are garbage collected.
      sqlite.close(true);
    },
  };
}

/**
 * The settings of one local connection. busy_timeout stays 0 (as @libsql/client opens it): a busy handler would
 * sleep on the event loop, and a busy write is retried in write(), as on bun:sqlite.
 */
async function configure(client: Client): Promise<void> {
  await client.execute("PRAGMA synchronous=NORMAL");
  await client.execute("PRAGMA foreign_keys=ON");
}

/**
 * A local file on @libsql/client (only DATABASE_DRIVER=libsql opens one this way). The client pools connections,
 * opening one whenever every open one is borrowed, with no hook to set a new one's per-connection PRAGMAs (a new
 * one would run synchronous=FULL). So two clients of one connection each, configured when opened and again after
 * a reconnect: one for the write transactions (write() runs one at a time), and one for every other call (each
 * borrows it for one synchronous step, so they never wait long on each other).
 */
async function localClient(url: string): Promise<Client> {
  const reads = createClient({ url, concurrency: 1 });
  const writes = createClient({ url, concurrency: 1 });
  await configure(reads);
  await configure(writes);
  return {
    execute: reads.execute.bind(reads),
    batch: reads.batch.bind(reads),
    migrate: reads.migrate.bind(reads),
    executeMultiple: reads.executeMultiple.bind(reads),
    sync: reads.sync.bind(reads),
    transaction: writes.transaction.bind(writes),
    // Only write() reconnects, to drop a transaction's connection (see there).
    reconnect: async () => {
      await writes.reconnect();
      await configure(writes);
    },
    close: () => {
      reads.close();
      writes.close();
    },
    get closed() {
      return reads.closed;
    },
    protocol: reads.protocol,
  };
}

async function openLibsql(url: string, path: string | null, opts: OpenOptions): Promise<Database> {
  // An in-memory database is one connection. On a server, a statement runs on a connection of the server's
  // choosing, so a per-connection PRAGMA sent from here holds only where it ran (libsql/sqld#764).
  const raw: Client = path ? await localClient(url) : createClient({ url });
  if (opts.setWal && path) await raw.execute("PRAGMA journal_mode=WAL");
  if (!path) await raw.execute("PRAGMA foreign_keys=ON");
  const db = drizzleLibsql(raw, { schema }) as unknown as Db;
  const waitMs = opts.writeWaitMs ?? DEFAULT_WRITE_WAIT_MS;
  // One write transaction at a time per process: libSQL's local connections would otherwise wait on each
  // other's write lock (and a server would make them queue anyway).
  let turn: Promise<unknown> = Promise.resolve();
  const write = <T>(body: TxBody<Db, T>): Promise<T> => {
    const run = turn.then(async () => {
      await writeCheck();
      return withBusyRetry(waitMs, async (started) => {
        try {
          return await (db as unknown as { transaction<R>(fn: (tx: Db) => Promise<R>): Promise<R> }).transaction((tx) => {
            started.value = true;
            return driveAsync(body(tx));
          });
        } catch (err) {
          // On a local file, a BEGIN that found the lock taken stays an unfinished statement on its pooled
          // connection, and every later COMMIT there fails ("SQL statements in progress"): drop the connections.
          // Safe here: this process's only transaction is this one (the turn above), other calls borrow one
          // synchronously.
          if (path && !started.value && isBusy(err)) await raw.reconnect();
          throw err;
        }
      });
    });
    turn = run.catch(() => undefined);
    return run.then((result) => {
      afterCommit();
      return result;
    });
  };
  return {
    db,
    driver: "libsql",
    client: raw as unknown as SqlClient,
    url,
    path,
    write,
    checkpoints: () => null,
    close: () => raw.close(),
  };
}

export async function openDatabase(url: string, opts: OpenOptions): Promise<Database> {
  const path = filePathOf(url);
  if (path) mkdirSync(dirname(path), { recursive: true });
  const driver = opts.driver ?? driverFor(url);
  return driver === "bun:sqlite" ? openBun(url, path, opts) : openLibsql(url, path, opts);
}
