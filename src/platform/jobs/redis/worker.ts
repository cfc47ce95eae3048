// The consuming side of the Redis queue: takes deliveries within JOB_CONCURRENCY (a fetch script, then a
// blocking read on a connection of its own, and the takeover scan for deliveries whose worker went silent),
// runs their handlers and hands the outcomes to the finisher.
import type { Redis } from "../../redis.ts";
import { decideFailure, errorText } from "../failure.ts";
import type { JobDefinition } from "../port.ts";
import { FETCH, RECLAIM, START } from "../redis-scripts.ts";
import { ensureGroups, GROUP, isNoGroup, release, STREAMS, type Held, type QueueContext, type StartedRow, type StreamName } from "./context.ts";
import type { Finisher, Outcome } from "./finisher.ts";
import type { HoldKeeper } from "./hold-keeper.ts";

const BLOCK_MS = 1_000;

type StreamEntries = [string, string[] | null][];
type StreamsReply = [string, StreamEntries][] | Record<string, StreamEntries>;

export class Worker {
  private readonly running = new Set<Promise<void>>();
  private active = 0;
  /**
   * Slots promised to a FETCH or RECLAIM script in flight: taken synchronously before the call, given back
   * when it returns, so two callers never both count the same free slot.
   */
  private reserved = 0;
  private closing = false;
  private canWrite: () => boolean = () => true;
  private blocking: Redis | null = null;
  private blockingId: string | null = null;
  private fetchLoop: Promise<void> | undefined;
  private slotWaiter: (() => void) | null = null;
  private readonly cursors: Record<StreamName, string> = { db: "0-0", any: "0-0" };
  private rotate = 0;
  private reclaiming = false;
  private reclaimTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly ctx: QueueContext,
    private readonly defs: ReadonlyMap<string, JobDefinition<any>>,
    private readonly holds: HoldKeeper,
    private readonly finisher: Finisher,
  ) {}

  /** Handlers running here now. */
  get runningHere(): number {
    return this.active;
  }

  start(canWrite: () => boolean): void {
    this.canWrite = canWrite;
    this.fetchLoop = this.runFetchLoop();
    const vis = this.ctx.o.visibilityTimeoutMs;
    this.reclaimTimer = setInterval(() => void this.reclaim(), Math.max(50, Math.min(Math.floor(vis / 2), 5_000)));
  }

  private streamsToRead(): StreamName[] {
    if (!this.canWrite()) return ["any"];
    // Alternate which stream is read first, so a busy one does not starve the other.
    return this.rotate++ % 2 === 0 ? ["db", "any"] : ["any", "db"];
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => (this.slotWaiter = resolve));
  }

  /** Slots neither running a handler nor promised to a script in flight. */
  private freeSlots(): number {
    return this.ctx.o.concurrency - this.active - this.reserved;
  }

  private wake(): void {
    const w = this.slotWaiter;
    this.slotWaiter = null;
    w?.();
  }

  private async runFetchLoop(): Promise<void> {
    await ensureGroups(this.ctx).catch(() => undefined);
    let failures = 0;
    while (!this.closing) {
      const free = this.freeSlots();
      if (free <= 0) {
        await this.waitForSlot();
        continue;
      }
      const streams = this.streamsToRead();
      try {
        this.reserved += free;
        let rows: StartedRow[];
        try {
          rows = await this.startScript(FETCH, [free, ...streams]);
        } finally {
          this.reserved -= free;
        }
        this.dispatchAll(rows);
        // The blocking read reserves nothing (the takeover scan may use the slot meanwhile): what it brings is
        // started only within the slots still free when it returns (see blockingRead).
        if (rows.length === 0 && !this.closing && this.freeSlots() > 0) await this.blockingRead(streams);
        failures = 0;
      } catch (err) {
        if (this.closing) break;
        if (isNoGroup(err)) {
          // First start, or Redis lost its data (restart without persistence): recreate the group.
          await ensureGroups(this.ctx).catch(() => undefined);
          if (failures++ === 0) continue;
        } else {
          failures++;
          this.ctx.logError("job fetch failed; retrying", err);
        }
        await Bun.sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private async startScript(script: typeof FETCH, extra: (string | number)[]): Promise<StartedRow[]> {
    const { redis, base, o } = this.ctx;
    return (await script.run(redis, [], [base, GROUP, o.consumerName, Date.now(), o.retentionFailedMs, ...extra])) as StartedRow[];
  }

  /**
   * Waits (on a connection of its own) for the next entry when the streams are empty, starts what arrived and
   * dispatches it within the slots free at that moment; the rest is handed back to the stream at once (not a retry).
   */
  private async blockingRead(streams: StreamName[]): Promise<void> {
    const { redis, base, o } = this.ctx;
    const client = await this.blockingClient();
    if (this.closing) return;
    const keys = streams.map((s) => base + "stream:" + s);
    const reply = (await client.sendCommand([
      "XREADGROUP", "GROUP", GROUP, o.consumerName, "COUNT", "1", "BLOCK", String(BLOCK_MS),
      "STREAMS", ...keys, ...keys.map(() => ">"),
    ])) as StreamsReply | null;
    if (!reply) return;
    const args: string[] = [base, GROUP, String(Date.now()), String(o.retentionFailedMs)];
    // RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries].
    const perStream = Array.isArray(reply) ? reply : Object.entries(reply);
    for (const [key, entries] of perStream) {
      const stream = key.slice(base.length + "stream:".length);
      for (const [eid, fields] of entries) args.push(stream, eid, fields?.[1] ?? "");
    }
    const rows = (await START.run(redis, [], args)) as StartedRow[];
    // Up to one entry per stream arrived, and the takeover scan may have filled slots during the read.
    const extra = rows.splice(Math.max(0, this.closing ? 0 : this.freeSlots()));
    this.dispatchAll(rows);
    if (extra.length > 0) await this.releaseRows(extra);
  }

  private async blockingClient(): Promise<Redis> {
    if (!this.blocking) {
      const c = this.ctx.redis.duplicate() as Redis;
      c.on("error", () => undefined);
      c.on("ready", () => (this.blockingId = null));
      this.blocking = c;
      await c.connect().catch(() => undefined);
    }
    if (this.blockingId === null && this.blocking.isReady) {
      this.blockingId = String(await this.blocking.sendCommand(["CLIENT", "ID"]));
    }
    return this.blocking;
  }

  private dispatchAll(rows: StartedRow[]): void {
    if (this.closing) {
      void this.releaseRows(rows).catch(() => undefined);
      return;
    }
    for (const row of rows) this.dispatch(row);
  }

  private dispatch(row: StartedRow): void {
    const [stream, eid, jid, type, payload, retry, maxRetries, dlv] = row;
    const held: Held = {
      stream, eid, jid, dlv: String(dlv), ctrl: new AbortController(),
      type, retry: Number(retry), maxRetries: Number(maxRetries), startedAt: Date.now(),
    };
    this.holds.add(held);
    this.active++;
    const p: Promise<void> = this.execute(held, type, payload, Number(retry), Number(maxRetries)).finally(() => {
      this.holds.delete(held);
      this.active--;
      this.running.delete(p);
      this.wake();
    });
    this.running.add(p);
  }

  private async execute(held: Held, type: string, payload: string, retry: number, maxRetries: number): Promise<void> {
    const { o, log } = this.ctx;
    let outcome: Outcome;
    let started = performance.now();
    try {
      const def = this.defs.get(type);
      if (!def) throw new Error(`no handler registered for job type "${type}" on this instance`);
      if (def.writesDb && !this.canWrite()) {
        // This instance stopped being the primary since it took the job: give it back.
        await release(this.ctx, [held]);
        return;
      }
      // Finished before (its ack lost with Redis's data, then relayed again): record it again, run nothing.
      const prior = await o.ledger?.finished(held.jid);
      if (prior?.status === "failed") outcome = { kind: "fail", retry: prior.retry_count, error: prior.error_message ?? "" };
      else {
        started = performance.now();
        if (!prior) await def.handler(JSON.parse(payload), { jobId: held.jid, type, attempt: retry + 1, signal: held.ctrl.signal });
        outcome = { kind: "ok" };
        if (!prior) o.onRun?.(type, (performance.now() - started) / 1000, "completed");
      }
    } catch (err) {
      // Aborted (hold lost, or shutdown past its grace): the delivery is someone else's now; record nothing.
      if (held.ctrl.signal.aborted) return;
      const error = errorText(err);
      const decision = decideFailure(err, retry, maxRetries, o);
      o.onRun?.(type, (performance.now() - started) / 1000, decision.kind === "fail" ? "failed" : decision.deferred ? "deferred" : "retry");
      if (decision.kind === "fail") {
        outcome = { kind: "fail", retry, error };
        log.warn("job failed", { job_id: held.jid, type, retry_count: retry, error });
      } else {
        outcome = { kind: "retry", retry: decision.retry, delay: decision.delay, error };
        log.info("job will be retried", { job_id: held.jid, type, retry_count: decision.retry, delay_ms: decision.delay, error });
      }
    }
    if (held.ctrl.signal.aborted) return;
    await this.finisher.finish(held, outcome);
  }

  private releaseRows(rows: StartedRow[]): Promise<void> {
    return release(this.ctx, rows.map(([stream, eid, jid, , , , , dlv]) => ({ stream, eid, jid, dlv: String(dlv) })));
  }

  /** Takes over deliveries whose worker stopped answering for longer than the visibility timeout. */
  private async reclaim(): Promise<void> {
    const free = this.freeSlots();
    if (this.reclaiming || this.closing || free <= 0) return;
    const { redis, base, o, log } = this.ctx;
    this.reclaiming = true;
    this.reserved += free;
    let reserved = true;
    try {
      const streams = this.canWrite() ? STREAMS : (["any"] as const);
      const [cursors, rows] = (await RECLAIM.run(redis, [], [
        base, GROUP, o.consumerName, Date.now(), o.retentionFailedMs, o.visibilityTimeoutMs, free,
        ...streams.flatMap((s) => [s, this.cursors[s]]),
      ])) as [string[], StartedRow[]];
      this.reserved -= free;
      reserved = false;
      streams.forEach((s, i) => (this.cursors[s] = cursors[i] ?? "0-0"));
      if (rows.length > 0) log.info("took over jobs from a worker that stopped answering", { count: rows.length });
      this.dispatchAll(rows);
    } catch (err) {
      if (isNoGroup(err)) await ensureGroups(this.ctx).catch(() => undefined);
      else this.ctx.logError("job takeover scan failed", err);
    } finally {
      if (reserved) this.reserved -= free;
      this.reclaiming = false;
      // Slots reserved and not used are free again: the fetch loop may be waiting for one.
      this.wake();
    }
  }

  /**
   * Stops taking deliveries and waits for the running handlers up to the shutdown grace; those still running
   * then are aborted and their jobs handed back. Holds are still extended meanwhile (the hold keeper runs on).
   */
  async drain(): Promise<void> {
    const { redis, o, log } = this.ctx;
    this.closing = true;
    this.wake();
    if (this.blockingId !== null) {
      await redis.sendCommand(["CLIENT", "UNBLOCK", this.blockingId]).catch(() => undefined);
    }
    await Promise.race([this.fetchLoop, Bun.sleep(BLOCK_MS + 500)]);
    const running = [...this.running];
    const finished = await Promise.race([
      Promise.allSettled(running).then(() => true),
      Bun.sleep(o.shutdownGraceMs).then(() => false),
    ]);
    if (!finished && this.holds.size > 0) {
      const left = this.holds.list();
      log.warn("handlers still running at shutdown; aborting them and handing their jobs back", { count: left.length });
      for (const h of left) h.ctrl.abort(new Error("the worker is shutting down"));
      await release(this.ctx, left).catch((err) =>
        log.warn("could not hand jobs back; they will be taken over after the visibility timeout", { error: errorText(err) }),
      );
    }
  }

  stopTimers(): void {
    clearInterval(this.reclaimTimer);
  }

  /** Closes the blocking connection: last, once nothing can be reading on it. */
  closeConnection(): void {
    const b = this.blocking;
    this.blocking = null;
    if (b) {
      try {
        if (b.isOpen) b.destroy();
      } catch {}
    }
  }
}
