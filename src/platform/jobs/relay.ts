// Moves committed outbox rows to the queue (the row's idempotency key becomes the job's, so relaying a row
// twice enqueues one job), on the primary only. It polls, reacts to kick() after a commit, and keeps retrying
// while the queue is unreachable. The worker records a finished job in job_results and deletes its row
// (outboxLedger), before acknowledging it in the queue; so a relayed row still here is a job that has not
// finished, and the reconciler needs the queue only to tell "waiting or running" from "lost" (Redis restarted
// without its data, or the in-process queue died with its process): lost rows are enqueued again under the
// same job id. Each pass covers every relayed row. Rows are also enqueued `tracked` (the queue's finished
// markers), which covers finishes the ledger could not write.
import type { Role } from "../cluster/role.ts";
import type { Database } from "../db/client.ts";
import { q } from "../db/tx.ts";
import type { Logger } from "../observability/logger.ts";
import { outboxRepo } from "./outbox.ts";
import type { Job, JobQueue } from "./port.ts";
import { errorText } from "./failure.ts";

const KICK_COALESCE_MS = 20;

export interface RelayOptions {
  /** How often the outbox is read when nothing kicks the relay. */
  pollMs?: number;
  batch?: number;
  /** How often relayed rows are checked against the queue. */
  reconcileMs?: number;
  /** How long job_results keep finished jobs (the queue's retention of finished records). */
  retention?: { completedMs: number; failedMs: number };
  logger: Logger;
}

/** What the features see of the relay. */
export interface OutboxKick {
  /** Asks the relay to move committed outbox rows to the queue now, instead of at its next poll. */
  kick(): void;
}

const RECONCILE_BATCH = 1_000;

export class OutboxRelay implements OutboxKick {
  private readonly pollMs: number;
  private readonly batch: number;
  private readonly reconcileMs: number;
  private readonly log: Logger;
  private readonly retention: { completedMs: number; failedMs: number };
  private closing = false;
  private loop: Promise<void> | undefined;
  private kicked = false;
  private kickTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeUp: (() => void) | null = null;
  private reconcileCursor = 0;
  private nextReconcileAt = 0;
  private lastErrorLog = 0;

  constructor(
    private readonly database: Database,
    private readonly queue: JobQueue,
    private readonly role: Role,
    opts: RelayOptions,
  ) {
    this.pollMs = opts.pollMs ?? 1_000;
    this.batch = opts.batch ?? 200;
    this.reconcileMs = opts.reconcileMs ?? 30_000;
    this.retention = opts.retention ?? { completedMs: 86_400_000, failedMs: 7 * 86_400_000 };
    this.log = opts.logger.child({ component: "outbox" });
  }

  /** Kicks within a few milliseconds are coalesced: a burst of commits is relayed in one batch. */
  kick(): void {
    if (this.kickTimer) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined;
      this.kicked = true;
      this.wakeUp?.();
    }, KICK_COALESCE_MS);
  }

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.kickTimer);
    this.wakeUp?.();
    await this.loop;
  }

  /** Sleeps `ms`; a kick ends it early when `wakeOnKick`, closing always does. */
  private sleep(ms: number, wakeOnKick: boolean): Promise<void> {
    if (this.closing || (wakeOnKick && this.kicked)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeUp = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeUp = () => {
        if (wakeOnKick || this.closing) done();
      };
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      let delay = this.pollMs;
      let wakeOnKick = true;
      if (this.role.isPrimary()) {
        try {
          this.kicked = false;
          const moved = await this.relayOnce();
          if (moved >= this.batch) delay = 0;
          if (Date.now() >= this.nextReconcileAt) {
            await this.reconcileOnce();
            this.nextReconcileAt = Date.now() + this.reconcileMs;
          }
          failures = 0;
        } catch (err) {
          failures++;
          // While the queue is down, a kick per registration must not turn into a retry per registration.
          delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
          wakeOnKick = false;
          const now = Date.now();
          if (now - this.lastErrorLog > 5_000) {
            this.lastErrorLog = now;
            this.log.warn("outbox relay cannot reach the queue; retrying", { error: errorText(err), retry_in_ms: delay });
          }
        }
      }
      if (delay > 0 && !this.closing) await this.sleep(delay, wakeOnKick);
    }
  }

  /** Enqueues one batch of committed rows and marks them relayed; returns how many it moved. */
  async relayOnce(): Promise<number> {
    const rows = await outboxRepo.pending(this.database.db, this.batch);
    if (rows.length === 0) return 0;
    let ids: string[];
    try {
      ids = await this.queue.enqueueMany(
        rows.map((r) => ({
          type: r.jobType,
          payload: r.payload,
          idempotencyKey: r.idempotencyKey,
          maxRetries: r.maxRetries ?? undefined,
          jobId: r.jobId ?? undefined,
          tracked: true,
        })),
      );
    } catch (err) {
      const failed = rows.map((r) => r.id);
      await this.database.write((tx) => q(outboxRepo.markFailedAttempt(tx, failed, errorText(err)))).catch(() => undefined);
      throw err;
    }
    const relayed = rows.map((r, i) => ({ id: r.id, jobId: ids[i]! }));
    const at = new Date().toISOString();
    await this.database.write((tx) => q(outboxRepo.markRelayed(tx, relayed, at)));
    this.log.debug("outbox rows relayed", { count: rows.length });
    return rows.length;
  }

  /**
   * Checks every relayed row against the queue, in batches, from where the last pass stopped: a pass ends when
   * it has seen them all or after half the reconcile interval (it goes on from there next time).
   */
  async reconcileOnce(limit = RECONCILE_BATCH): Promise<{ deleted: number; requeued: number }> {
    const total = { deleted: 0, requeued: 0 };
    const deadline = Date.now() + this.reconcileMs / 2;
    for (;;) {
      const rows = await outboxRepo.relayed(this.database.db, this.reconcileCursor, limit);
      this.reconcileCursor = rows.length < limit ? 0 : rows[rows.length - 1]!.id;
      const r = await this.reconcileBatch(rows);
      total.deleted += r.deleted;
      total.requeued += r.requeued;
      if (this.reconcileCursor === 0 || Date.now() > deadline || this.closing) break;
    }
    await this.database.write((tx) => outboxRepo.pruneResults(tx, this.retention));
    if (total.requeued > 0) {
      this.log.warn("the queue lost relayed jobs; relaying them again under the same ids", { count: total.requeued });
      this.kick();
    }
    return total;
  }

  private async reconcileBatch(rows: readonly { id: number; jobId: string | null }[]): Promise<{ deleted: number; requeued: number }> {
    if (rows.length === 0) return { deleted: 0, requeued: 0 };
    const ids = rows.flatMap((r) => (r.jobId ? [r.jobId] : []));
    // A result without its row's deletion (a crash between the two) is a finished job too.
    const recorded = new Set((await outboxRepo.results(this.database.db, ids)).map((j) => j.id));
    const open = ids.filter((id) => !recorded.has(id));
    // The finished markers outlive the jobs' records (whose retention may be a second): a missing record
    // means lost only when there is no marker either.
    const [jobs, finished] = await Promise.all([this.queue.getJobs(open), this.queue.finishedTracked(open)]);
    const doneRows: number[] = [];
    const doneJobs: string[] = [];
    const toRecord: Job[] = [];
    const lost: number[] = [];
    for (const r of rows) {
      if (!r.jobId) continue;
      const job = jobs[r.jobId];
      if (recorded.has(r.jobId)) doneRows.push(r.id);
      else if (job?.status === "completed" || job?.status === "failed") toRecord.push(job);
      else if (finished.has(r.jobId)) doneRows.push(r.id);
      else if (!job) lost.push(r.id);
      if (recorded.has(r.jobId) || finished.has(r.jobId) || job?.status === "completed" || job?.status === "failed") doneJobs.push(r.jobId);
    }
    // Finishes the worker could not record (an older worker, or a ledger write that failed) are recorded here.
    const recordedNow = await this.database.write((tx) => outboxRepo.finish(tx, toRecord));
    await this.database.write((tx) => q(outboxRepo.delete(tx, doneRows)));
    await this.queue.forgetFinished(doneJobs);
    await this.database.write((tx) => q(outboxRepo.unrelay(tx, lost)));
    return { deleted: doneRows.length + recordedNow, requeued: lost.length };
  }
}
