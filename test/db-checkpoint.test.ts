// WAL checkpoints run in a worker thread with its own connection (src/platform/db/checkpoint.ts), not inside
// the COMMITs of the serving connection: the WAL must still stay bounded under sustained writes, a database
// that commits nothing (a replica) must start no worker, and closing stops the worker after it closed its connection.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { openDatabase, type Database } from "../src/platform/db/client.ts";
import { runMigrations } from "../src/platform/db/migrate.ts";
import { q } from "../src/platform/db/tx.ts";
import { checkpointer, DEFAULT_CHECKPOINTS } from "../src/platform/db/checkpoint.ts";
import { tempDir, TEST_TIMEOUT_MS } from "./helpers.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const opened: Database[] = [];
afterAll(() => {
  for (const d of opened) d.close();
});

async function fresh(checkpoints: Parameters<typeof openDatabase>[1]["checkpoints"] = {}) {
  const file = join(tempDir("ckpt-"), "app.db");
  const database = await openDatabase(`file:${file}`, { setWal: true, checkpoints });
  opened.push(database);
  await runMigrations(database);
  return { database, file };
}

const pageSize = async (d: Database) => Number((await d.client.execute("PRAGMA page_size")).rows[0]!.page_size);
const padding = "x".repeat(2_000);
const insertResult = (d: Database, i: number) =>
  d.write(function* (tx) {
    yield* q(
      tx.run(
        sql`insert into job_results (job_id, job_type, status, created_at, completed_at, error_message) values (${`job-${i}`}, ${"t"}, ${"completed"}, ${"c"}, ${"d"}, ${padding})`,
      ),
    );
  });

describe("WAL checkpoints off the event loop", () => {
  test("the serving connection checkpoints only as a backstop", async () => {
    const { database } = await fresh({ backstopFrames: 12_345 });
    const row = (await database.client.execute("PRAGMA wal_autocheckpoint")).rows[0]!;
    expect(Object.values(row)[0]).toBe(12_345);
  });

  test("under sustained writes the worker keeps the WAL bounded (the serving connection never checkpoints here)", async () => {
    // A backstop far beyond what the test writes: without the worker the WAL would hold every frame written.
    const { database, file } = await fresh({ restartFrames: 200, backstopFrames: 1_000_000 });
    const writes = 3_000;
    for (let i = 0; i < writes; i++) {
      await insertResult(database, i);
      if (i % 10 === 9) await Bun.sleep(2);
    }
    const frames = statSync(`${file}-wal`).size / (await pageSize(database));
    // Each write adds at least one frame (a 2 KB row, its indexes): unbounded, the WAL would pass 3,000 frames.
    expect(frames).toBeLessThan(writes / 2);
    const stats = database.checkpoints()!;
    expect(stats.running).toBe(true);
    expect(stats.checkpoints).toBeGreaterThan(0);
    expect(stats.restarts).toBeGreaterThan(0);
    const n = (await database.client.execute("SELECT count(*) AS n FROM job_results")).rows[0]!.n;
    expect(Number(n)).toBe(writes);
  }, 60_000);

  test("a database that commits nothing starts no worker; the first commit starts it and it checkpoints", async () => {
    const { database, file } = await fresh();
    await database.client.execute("SELECT count(*) FROM users");
    expect(database.checkpoints()!.running).toBe(false);
    await insertResult(database, 1);
    expect(database.checkpoints()!.running).toBe(true);
    await waitUntil(() => database.checkpoints()!.checkpoints > 0, { timeoutMs: 10_000 });
    expect(existsSync(`${file}-wal`)).toBe(true);
  }, 20_000);

  test("the checkpointer's close reports that the worker closed its connection", async () => {
    const { database, file } = await fresh();
    database.close();
    opened.splice(opened.indexOf(database), 1);
    const c = checkpointer({ ...DEFAULT_CHECKPOINTS, path: file });
    c.committed();
    await waitUntil(() => c.stats().checkpoints > 0, { timeoutMs: 10_000 });
    expect(c.close()).toBe(true);
  }, 20_000);
});
