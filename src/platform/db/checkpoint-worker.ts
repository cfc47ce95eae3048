// The checkpointer's thread (see checkpoint.ts): its own connection to the file, opened at the first commit, and
// a loop that sleeps on the commit counter and checkpoints after commits. Copying the WAL into the database and
// the fsync that follows happen here, where sleeping and waiting hold up no request.
import { Database } from "bun:sqlite";
import { SLOT, type CheckpointSettings } from "./checkpoint.ts";

declare const self: Worker;

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(slots: Int32Array, settings: CheckpointSettings): void {
  let conn: Database | null = null;
  let seen = 0;
  const checkpoint = (mode: "PASSIVE" | "RESTART"): CheckpointRow | null => {
    try {
      return conn!.query<CheckpointRow, []>(`PRAGMA wal_checkpoint(${mode})`).get();
    } catch {
      // SQLITE_BUSY (another process's writer, LiteFS refusing the checkpoint lock during a commit): next round.
      return null;
    }
  };
  while (Atomics.load(slots, SLOT.stop) === 0) {
    const commits = Atomics.load(slots, SLOT.commits);
    if (commits === seen) {
      // Woken by the serving thread every few commits, or by the timeout after fewer.
      Atomics.wait(slots, SLOT.commits, commits, settings.intervalMs);
      continue;
    }
    seen = commits;
    if (conn === null) {
      conn = new Database(settings.path);
      // Only RESTART waits (for the write in progress to commit); it sleeps in this thread.
      conn.exec(`PRAGMA busy_timeout = ${settings.restartWaitMs}`);
    }
    // Copies what it can without the write lock; the serving thread's writes go on meanwhile.
    let r = checkpoint("PASSIVE");
    if (r !== null && r.busy === 0 && r.log > settings.restartFrames) {
      // Writes kept appending while it copied: take the write lock for what is left, so the next write starts
      // the WAL over from its beginning and the file stops growing.
      const restarted = checkpoint("RESTART");
      if (restarted !== null && restarted.busy === 0) Atomics.add(slots, SLOT.restarts, 1);
      r = restarted ?? r;
    }
    if (r === null || r.busy !== 0) Atomics.add(slots, SLOT.busy, 1);
    else Atomics.add(slots, SLOT.checkpoints, 1);
    if (r !== null) Atomics.store(slots, SLOT.logFrames, r.log);
    // Let a few more commits gather before the next round.
    Atomics.wait(slots, SLOT.stop, 0, settings.gapMs);
  }
  conn?.close();
  Atomics.store(slots, SLOT.stopped, 1);
  Atomics.notify(slots, SLOT.stopped);
}

self.onmessage = (event: MessageEvent) => {
  const { slots, settings } = event.data as { slots: SharedArrayBuffer; settings: CheckpointSettings };
  run(new Int32Array(slots), settings);
};
