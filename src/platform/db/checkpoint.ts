// WAL checkpoints off the event loop. SQLite checkpoints by default inside the COMMIT that brings the WAL to
// 1,000 pages: the serving connection then copies the pages into the database and fsyncs it while every
// request of the process waits. Here the serving connection only checkpoints as a backstop (a far larger WAL),
// and a Bun Worker with its own connection checkpoints whenever writes were committed since its last round.
// LiteFS allows it: its checkpoint lock is refused while a commit is in progress (the worker then tries again),
// and a replica commits nothing, so its worker never starts.
export interface CheckpointSettings {
  path: string;
  /** The longest a commit waits for the worker to look (it is woken sooner every WAKE_EVERY commits). */
  intervalMs: number;
  /** The pause between two rounds while writes keep coming. */
  gapMs: number;
  /** WAL frames left after a passive checkpoint beyond which the worker takes the write lock to restart the WAL. */
  restartFrames: number;
  /** How long that restart may wait for the write in progress (in the worker's thread). */
  restartWaitMs: number;
  /** The serving connection's own wal_autocheckpoint: only reached if the worker falls behind or stops. */
  backstopFrames: number;
}

export const DEFAULT_CHECKPOINTS: Omit<CheckpointSettings, "path"> = {
  intervalMs: 250,
  gapMs: 5,
  restartFrames: 1_000,
  restartWaitMs: 200,
  backstopFrames: 10_000,
};

/** The shared counters: the serving thread counts commits, the worker counts what it did. */
export const SLOT = { commits: 0, checkpoints: 1, restarts: 2, busy: 3, logFrames: 4, stop: 5, stopped: 6 } as const;
/** The serving thread wakes the worker once per this many commits (a futex wake per commit would cost more). */
const WAKE_EVERY = 32;

export interface CheckpointStats {
  /** Whether the worker runs (it starts at the first commit). */
  running: boolean;
  checkpoints: number;
  restarts: number;
  busy: number;
  /** WAL frames after the last checkpoint (0 once a restart emptied it). */
  logFrames: number;
}

export interface Checkpointer {
  /** Called after each COMMIT of the serving connection; starts the worker the first time. */
  committed(): void;
  stats(): CheckpointStats;
  /**
   * Stops the worker, which closes its connection (waiting for a checkpoint in progress, at most a second).
   * False when a worker ran and did not say it closed its connection in that time.
   */
  close(): boolean;
}

export function checkpointer(settings: CheckpointSettings): Checkpointer {
  const slots = new Int32Array(new SharedArrayBuffer(8 * Int32Array.BYTES_PER_ELEMENT));
  let worker: Worker | null = null;
  let closed = false;
  return {
    committed() {
      const n = Atomics.add(slots, SLOT.commits, 1) + 1;
      if (worker !== null) {
        if (n % WAKE_EVERY === 0) Atomics.notify(slots, SLOT.commits);
        return;
      }
      if (closed) return;
      worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href);
      (worker as Worker & { unref(): void }).unref();
      worker.postMessage({ slots: slots.buffer, settings });
    },
    stats: () => ({
      running: worker !== null,
      checkpoints: Atomics.load(slots, SLOT.checkpoints),
      restarts: Atomics.load(slots, SLOT.restarts),
      busy: Atomics.load(slots, SLOT.busy),
      logFrames: Atomics.load(slots, SLOT.logFrames),
    }),
    close() {
      closed = true;
      if (worker === null) return true;
      Atomics.store(slots, SLOT.stop, 1);
      Atomics.notify(slots, SLOT.commits);
      Atomics.notify(slots, SLOT.stop);
      const stopped = Atomics.wait(slots, SLOT.stopped, 0, 1_000) !== "timed-out";
      worker.terminate();
      worker = null;
      return stopped;
    },
  };
}
