// The durable queue: Redis streams with one consumer group. A job is acknowledged only after its handler
// returns; a delivery whose worker stops extending its hold is taken over by another worker after the
// visibility timeout; failures are retried from a delayed set with exponential backoff and jitter, then kept
// in a failed set. The atomic steps are the Lua scripts of redis-scripts.ts.
import type { Redis } from "../redis.ts";
import type { Logger } from "../observability/logger.ts";
import type { QueueOptions } from "./options.ts";
import {
  decideFailure,
  type EnqueueOptions,
  type EnqueueRequest,
  type Job,
  type JobDefinition,
  type JobQueue,
  type JobStatus,
  type QueueStats,
} from "./port.ts";
import { DELETE_IDLE_CONSUMER, ENQUEUE, EXTEND, FETCH, FINISH, PROMOTE, RECLAIM, RELEASE, START } from "./redis-scripts.ts";

export const GROUP = "workers";
type StreamName = "db" | "any";
const STREAMS: readonly StreamName[] = ["db", "any"];
const JOB_FIELDS = ["id", "type", "status", "created_at", "started_at", "completed_at", "error_message", "retry_count", "max_retries"] as const;
const ENQUEUE_CHUNK = 500;
const FINISH_CHUNK = 500;
const BLOCK_MS = 1_000;
const PROMOTE_MAX_WAIT_MS = 1_000;
const MAINTENANCE_EVERY_MS = 60_000;
/** A consumer with nothing pending and idle this long is a dead instance's: removed from the group. */
const DEAD_CONSUMER_IDLE_MS = 3_600_000;
const MAX_ERROR_LENGTH = 2_000;
/**
 * Finished markers of tracked jobs are removed by the outbox's reconciler; one it never removes (its row was
 * deleted, then the process died before the marker was) is trimmed after this long, or the failed retention if longer.
 * A row still waiting past that is relayed again: a rerun (at-least-once), never a loss.
 */
const FINISHED_MARKER_MAX_AGE_MS = 7 * 86_400_000;

/** A row returned by the start scripts: stream, entry id, job id, type, payload, retry_count, max_retries, delivery number. */
type StartedRow = [StreamName, string, string, string, string, number, number, string];
type StreamEntries = [string, string[] | null][];
type StreamsReply = [string, StreamEntries][] | Record<string, StreamEntries>;

/** One delivery being run here. `dlv` tells it from a later delivery of the same entry to this same worker. */
interface Held {
  stream: StreamName;
  eid: string;
  jid: string;
  dlv: string;
  ctrl: AbortController;
  type: string;
  retry: number;
  maxRetries: number;
  startedAt: number;
}

const heldKey = (h: { eid: string; dlv: string }) => `${h.eid}#${h.dlv}`;

type Outcome = { kind: "ok" } | { kind: "retry"; retry: number; delay: number; error: string } | { kind: "fail"; retry: number; error: string };

interface FinishItem {
  held: Held;
  outcome: Outcome;
  resolve: (recorded: boolean) => void;
  reject: (err: unknown) => void;
}

const iso = (ms: string | null | undefined): string | null => (ms ? new Date(Number(ms)).toISOString() : null);

export function jobFromFields(values: readonly (string | null | undefined)[]): Job | null {
  const [id, type, status, created, started, completed, error, retry, maxRetries] = values;
  if (!id || !type || !status) return null;
  return {
    id,
    type,
    status: status as JobStatus,
    created_at: iso(created) ?? new Date(0).toISOString(),
    started_at: iso(started),
    completed_at: iso(completed),
    error_message: error ? error : null,
    retry_count: Number(retry ?? 0),
    max_retries: Number(maxRetries ?? 0),
  };
}

function finalJob(held: Held, outcome: Outcome): Job[] {
  if (outcome.kind === "retry") return [];
  const ok = outcome.kind === "ok";
  return [{
    id: held.jid,
    type: held.type,
    status: ok ? "completed" : "failed",
    created_at: new Date(held.startedAt).toISOString(),
    started_at: new Date(held.startedAt).toISOString(),
    completed_at: new Date().toISOString(),
    error_message: ok ? null : outcome.error,
    retry_count: ok ? held.retry : outcome.retry,
    max_retries: held.maxRetries,
  }];
}

export function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}

const isNoGroup = (err: unknown) => /NOGROUP/.test(String((err as Error)?.message ?? err));

export class RedisQueue implements JobQueue {
  readonly kind = "redis" as const;
  private readonly defs = new Map<string, JobDefinition<any>>();
  private readonly base: string;
  private readonly log: Logger;
  private readonly held = new Map<string, Held>();
  private readonly running = new Set<Promise<void>>();
  private active = 0;
  /**
   * Slots promised to a FETCH or RECLAIM script in flight: taken synchronously before the call, given back
   * when it returns, so two callers never both count the same free slot.
   */
  private reserved = 0;
  private started = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private canWrite: () => boolean = () => true;
  private blocking: Redis | null = null;
  private blockingId: string | null = null;
  private fetchLoop: Promise<void> | undefined;
  private slotWaiter: (() => void) | null = null;
  private readonly cursors: Record<StreamName, string> = { db: "0-0", any: "0-0" };
  private rotate = 0;
  private reclaiming = false;
  private extending = false;
  private readonly timers = new Set<ReturnType<typeof setInterval>>();
  private promoteTimer: ReturnType<typeof setTimeout> | undefined;
  private promoteAt = Infinity;
  private promoting: Promise<void> | undefined;
  private finishQueue: FinishItem[] = [];
  private flushing: Promise<void> | undefined;
  private lastErrorLog = 0;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly o: QueueOptions,
  ) {
    this.base = `${prefix}jobs:`;
    this.log = o.logger.child({ component: "jobs" });
  }

  /** Key names, for tests and tools. */
  key(name: string): string {
    return this.base + name;
  }

  register(def: JobDefinition<any>): void {
    this.defs.set(def.type, def);
  }

  definition(type: string): JobDefinition<any> | undefined {
    return this.defs.get(type);
  }

  /** Unknown types go to the database stream: the cautious choice (only the primary reads it). */
  private streamOf(type: string): StreamName {
    return this.defs.get(type)?.writesDb === false ? "any" : "db";
  }

  async enqueue(type: string, payload: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<string> {
    const [id] = await this.enqueueMany([{ ...opts, type, payload }]);
    return id!;
  }

  async enqueueMany(jobs: readonly EnqueueRequest[]): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
      const chunk = jobs.slice(i, i + ENQUEUE_CHUNK);
      const args: (string | number)[] = [this.base, Date.now(), chunk.length];
      for (const j of chunk) {
        args.push(
          j.jobId ?? Bun.randomUUIDv7(),
          j.type,
          JSON.stringify(j.payload),
          j.maxRetries ?? this.defs.get(j.type)?.maxRetries ?? this.o.maxRetries,
          j.idempotencyKey ?? "",
          j.tracked ? "db" : this.streamOf(j.type),
          Math.max(0, Math.round(j.delayMs ?? 0)),
          j.tracked ? "1" : "",
        );
      }
      const out = (await ENQUEUE.run(this.redis, [], args)) as string[];
      ids.push(...out);
      if (chunk.some((j) => (j.delayMs ?? 0) > 0)) this.wakePromoter(Math.min(...chunk.map((j) => j.delayMs ?? Infinity)));
    }
    return ids;
  }

  async getJob(id: string): Promise<Job | null> {
    return jobFromFields((await this.redis.hmGet(this.base + "job:" + id, [...JOB_FIELDS])) as (string | null)[]);
  }

  async getJobs(ids: readonly string[]): Promise<Record<string, Job | null>> {
    const rows = await Promise.all(ids.map((id) => this.redis.hmGet(this.base + "job:" + id, [...JOB_FIELDS])));
    return Object.fromEntries(ids.map((id, i) => [id, jobFromFields(rows[i] as (string | null)[])]));
  }

  async listFailed(limit: number): Promise<Job[]> {
    const ids = (await this.redis.sendCommand(["ZREVRANGE", this.base + "failed", "0", String(Math.max(0, limit - 1))])) as string[];
    const jobs = await this.getJobs(ids);
    return ids.map((id) => jobs[id]).filter((j): j is Job => j !== null && j !== undefined);
  }

  async retryFailed(id: string): Promise<string | null> {
    const [status, type, payload, maxRetries] = (await this.redis.hmGet(this.base + "job:" + id, ["status", "type", "payload", "max_retries"])) as (string | null)[];
    if (status !== "failed" || !type || payload === null || payload === undefined) return null;
    // Taking it out of the failed set is the claim: two retries of one job make one new job.
    if (Number(await this.redis.sendCommand(["ZREM", this.base + "failed", id])) !== 1) return null;
    const next = await this.enqueue(type, JSON.parse(payload), { maxRetries: Number(maxRetries ?? this.o.maxRetries) });
    await this.redis.sendCommand(["DEL", this.base + "job:" + id]);
    return next;
  }

  async discardFailed(id: string): Promise<boolean> {
    if (Number(await this.redis.sendCommand(["ZREM", this.base + "failed", id])) !== 1) return false;
    await this.redis.sendCommand(["DEL", this.base + "job:" + id]);
    return true;
  }

  async finishedTracked(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const scores = (await this.redis.sendCommand(["ZMSCORE", this.base + "finished", ...ids])) as (string | null)[];
    return new Set(ids.filter((_, i) => scores[i] !== null && scores[i] !== undefined));
  }

  async forgetFinished(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.sendCommand(["ZREM", this.base + "finished", ...ids]);
  }

  async stats(): Promise<QueueStats> {
    const [db, any, delayed, failed, completed] = (await Promise.all([
      this.redis.sendCommand(["XLEN", this.base + "stream:db"]),
      this.redis.sendCommand(["XLEN", this.base + "stream:any"]),
      this.redis.sendCommand(["ZCARD", this.base + "delayed"]),
      this.redis.sendCommand(["ZCARD", this.base + "failed"]),
      this.redis.sendCommand(["GET", this.base + "completed_total"]),
    ])) as unknown as [number, number, number, number, string | null];
    return { waiting: db + any, delayed, running_here: this.active, failed, completed_total: Number(completed ?? 0) };
  }

  start(opts: { canWrite: () => boolean }): void {
    if (this.started) return;
    this.started = true;
    this.canWrite = opts.canWrite;
    this.log.info("job worker started", {
      consumer: this.o.consumerName,
      concurrency: this.o.concurrency,
      visibility_timeout_ms: this.o.visibilityTimeoutMs,
    });
    this.fetchLoop = this.runFetchLoop();
    const vis = this.o.visibilityTimeoutMs;
    this.every(Math.max(20, Math.floor(vis / 3)), () => this.extendHolds());
    this.every(Math.max(50, Math.min(Math.floor(vis / 2), 5_000)), () => this.reclaim());
    this.every(MAINTENANCE_EVERY_MS, () => this.maintain());
    this.schedulePromote(0);
    void this.maintain();
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => void fn(), ms);
    this.timers.add(t);
  }

  private streamsToRead(): StreamName[] {
    if (!this.canWrite()) return ["any"];
    // Alternate which stream is read first, so a busy one does not starve the other.
    return this.rotate++ % 2 === 0 ? ["db", "any"] : ["any", "db"];
  }

  private async ensureGroups(): Promise<void> {
    for (const s of STREAMS) {
      try {
        await this.redis.sendCommand(["XGROUP", "CREATE", this.base + "stream:" + s, GROUP, "0", "MKSTREAM"]);
      } catch (err) {
        if (!/BUSYGROUP/.test(String((err as Error).message))) throw err;
      }
    }
  }

  private logError(msg: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 5_000) return;
    this.lastErrorLog = now;
    this.log.warn(msg, { error: errorText(err) });
  }

  // ---- consuming -------------------------------------------------------------------------------------

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => (this.slotWaiter = resolve));
  }

  /** Slots neither running a handler nor promised to a script in flight. */
  private freeSlots(): number {
    return this.o.concurrency - this.active - this.reserved;
  }

  private wake(): void {
    const w = this.slotWaiter;
    this.slotWaiter = null;
    w?.();
  }

  private async runFetchLoop(): Promise<void> {
    await this.ensureGroups().catch(() => undefined);
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
          await this.ensureGroups().catch(() => undefined);
          if (failures++ === 0) continue;
        } else {
          failures++;
          this.logError("job fetch failed; retrying", err);
        }
        await Bun.sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private async startScript(script: typeof FETCH, extra: (string | number)[]): Promise<StartedRow[]> {
    return (await script.run(this.redis, [], [
      this.base,
      GROUP,
      this.o.consumerName,
      Date.now(),
      this.o.retentionFailedMs,
      ...extra,
    ])) as StartedRow[];
  }

  /**
   * Waits (on a connection of its own) for the next entry when the streams are empty, starts what arrived and
   * dispatches it within the slots free at that moment; the rest is handed back to the stream at once (not a retry).
   */
  private async blockingRead(streams: StreamName[]): Promise<void> {
    const client = await this.blockingClient();
    if (this.closing) return;
    const keys = streams.map((s) => this.base + "stream:" + s);
    const reply = (await client.sendCommand([
      "XREADGROUP", "GROUP", GROUP, this.o.consumerName, "COUNT", "1", "BLOCK", String(BLOCK_MS),
      "STREAMS", ...keys, ...keys.map(() => ">"),
    ])) as StreamsReply | null;
    if (!reply) return;
    const args: string[] = [this.base, GROUP, String(Date.now()), String(this.o.retentionFailedMs)];
    // RESP3 answers a map of stream -> entries, RESP2 a list of [stream, entries].
    const perStream = Array.isArray(reply) ? reply : Object.entries(reply);
    for (const [key, entries] of perStream) {
      const stream = key.slice(this.base.length + "stream:".length);
      for (const [eid, fields] of entries) args.push(stream, eid, fields?.[1] ?? "");
    }
    const rows = (await START.run(this.redis, [], args)) as StartedRow[];
    // Up to one entry per stream arrived, and the takeover scan may have filled slots during the read.
    const extra = rows.splice(Math.max(0, this.closing ? 0 : this.freeSlots()));
    this.dispatchAll(rows);
    if (extra.length > 0) await this.releaseRows(extra);
  }

  private async blockingClient(): Promise<Redis> {
    if (!this.blocking) {
      const c = this.redis.duplicate() as Redis;
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
    const key = heldKey(held);
    this.held.set(key, held);
    this.active++;
    const p: Promise<void> = this.execute(held, type, payload, Number(retry), Number(maxRetries)).finally(() => {
      this.held.delete(key);
      this.active--;
      this.running.delete(p);
      this.wake();
    });
    this.running.add(p);
  }

  private async execute(held: Held, type: string, payload: string, retry: number, maxRetries: number): Promise<void> {
    let outcome: Outcome;
    let started = performance.now();
    try {
      const def = this.defs.get(type);
      if (!def) throw new Error(`no handler registered for job type "${type}" on this instance`);
      if (def.writesDb && !this.canWrite()) {
        // This instance stopped being the primary since it took the job: give it back.
        await this.release([held]);
        return;
      }
      // Finished before (its ack lost with Redis's data, then relayed again): record it again, run nothing.
      const prior = await this.o.ledger?.finished(held.jid);
      if (prior?.status === "failed") outcome = { kind: "fail", retry: prior.retry_count, error: prior.error_message ?? "" };
      else {
        started = performance.now();
        if (!prior) await def.handler(JSON.parse(payload), { jobId: held.jid, type, attempt: retry + 1, signal: held.ctrl.signal });
        outcome = { kind: "ok" };
        if (!prior) this.o.onRun?.(type, (performance.now() - started) / 1000, "completed");
      }
    } catch (err) {
      // Aborted (hold lost, or shutdown past its grace): the delivery is someone else's now; record nothing.
      if (held.ctrl.signal.aborted) return;
      const error = errorText(err);
      const decision = decideFailure(err, retry, maxRetries, this.o);
      this.o.onRun?.(type, (performance.now() - started) / 1000, decision.kind === "fail" ? "failed" : decision.deferred ? "deferred" : "retry");
      if (decision.kind === "fail") {
        outcome = { kind: "fail", retry, error };
        this.log.warn("job failed", { job_id: held.jid, type, retry_count: retry, error });
      } else {
        outcome = { kind: "retry", retry: decision.retry, delay: decision.delay, error };
        this.log.info("job will be retried", { job_id: held.jid, type, retry_count: decision.retry, delay_ms: decision.delay, error });
      }
    }
    if (held.ctrl.signal.aborted) return;
    await this.finishWithRetry(held, outcome);
  }

  /** Records an outcome; while Redis is unreachable, keeps trying for up to a visibility timeout. */
  private async finishWithRetry(held: Held, outcome: Outcome): Promise<void> {
    const deadline = Date.now() + this.o.visibilityTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const recorded = await this.pushFinish(held, outcome);
        if (!recorded) this.log.debug("job outcome not recorded: another worker holds it now", { job_id: held.jid });
        else if (outcome.kind === "retry") this.wakePromoter(outcome.delay);
        return;
      } catch (err) {
        if (Date.now() > deadline || held.ctrl.signal.aborted) {
          this.log.warn("could not record a job's outcome; it will be delivered again", { job_id: held.jid, error: errorText(err) });
          return;
        }
        await Bun.sleep(Math.min(1_000, 25 * 2 ** attempt));
      }
    }
  }

  /** Outcomes are written in batches: those that finish while a batch is in flight go in the next one. */
  private pushFinish(held: Held, outcome: Outcome): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.finishQueue.push({ held, outcome, resolve, reject });
      if (!this.flushing) this.flushing = this.flushFinishes();
    });
  }

  private async flushFinishes(): Promise<void> {
    await Promise.resolve();
    while (this.finishQueue.length > 0) {
      const batch = this.finishQueue.splice(0, FINISH_CHUNK);
      const args: (string | number)[] = [
        this.base, GROUP, this.o.consumerName, Date.now(), this.o.retentionCompletedMs, this.o.retentionFailedMs,
      ];
      for (const { held, outcome } of batch) {
        args.push(
          held.stream,
          held.eid,
          held.jid,
          held.dlv,
          outcome.kind,
          outcome.kind === "ok" ? 0 : outcome.retry,
          outcome.kind === "retry" ? outcome.delay : 0,
          outcome.kind === "ok" ? "" : outcome.error,
        );
      }
      try {
        // Durable first: once the ledger has it, nothing Redis forgets can make the job run again.
        if (this.o.ledger) await this.o.ledger.recordFinished(batch.flatMap(({ held, outcome }) => finalJob(held, outcome)));
        const res = (await FINISH.run(this.redis, [], args)) as number[];
        batch.forEach((item, i) => item.resolve(res[i] === 1));
      } catch (err) {
        for (const item of batch) item.reject(err);
      }
    }
    this.flushing = undefined;
  }

  private releaseRows(rows: StartedRow[]): Promise<void> {
    return this.release(rows.map(([stream, eid, jid, , , , , dlv]) => ({ stream, eid, jid, dlv: String(dlv) })));
  }

  private async release(list: readonly Pick<Held, "stream" | "eid" | "jid" | "dlv">[]): Promise<void> {
    if (list.length === 0) return;
    await RELEASE.run(this.redis, [], [this.base, GROUP, this.o.consumerName, ...list.flatMap((h) => [h.stream, h.eid, h.jid, h.dlv])]);
  }

  // ---- holds, takeovers, delayed jobs, retention ---------------------------------------------------------

  /** Extends the hold on every delivery this worker has; aborts the handlers of those it lost. */
  private async extendHolds(): Promise<void> {
    if (this.extending || this.held.size === 0) return;
    this.extending = true;
    try {
      const list = [...this.held.values()];
      const lost = (await EXTEND.run(this.redis, [], [
        this.base, GROUP, this.o.consumerName, ...list.flatMap((h) => [h.stream, h.eid, h.jid, h.dlv]),
      ])) as number[];
      for (const pos of lost) {
        const h = list[Number(pos) - 1];
        if (h && !h.ctrl.signal.aborted) {
          this.log.warn("lost the hold on a running job; aborting it", { job_id: h.jid });
          h.ctrl.abort(new Error("this worker lost its hold on the job"));
        }
      }
    } catch (err) {
      this.logError("could not extend job holds", err);
    } finally {
      this.extending = false;
    }
  }

  /** Takes over deliveries whose worker stopped answering for longer than the visibility timeout. */
  private async reclaim(): Promise<void> {
    const free = this.freeSlots();
    if (this.reclaiming || this.closing || free <= 0) return;
    this.reclaiming = true;
    this.reserved += free;
    let reserved = true;
    try {
      const streams = this.canWrite() ? STREAMS : (["any"] as const);
      const [cursors, rows] = (await RECLAIM.run(this.redis, [], [
        this.base, GROUP, this.o.consumerName, Date.now(), this.o.retentionFailedMs, this.o.visibilityTimeoutMs, free,
        ...streams.flatMap((s) => [s, this.cursors[s]]),
      ])) as [string[], StartedRow[]];
      this.reserved -= free;
      reserved = false;
      streams.forEach((s, i) => (this.cursors[s] = cursors[i] ?? "0-0"));
      if (rows.length > 0) this.log.info("took over jobs from a worker that stopped answering", { count: rows.length });
      this.dispatchAll(rows);
    } catch (err) {
      if (isNoGroup(err)) await this.ensureGroups().catch(() => undefined);
      else this.logError("job takeover scan failed", err);
    } finally {
      if (reserved) this.reserved -= free;
      this.reclaiming = false;
      // Slots reserved and not used are free again: the fetch loop may be waiting for one.
      this.wake();
    }
  }

  private wakePromoter(inMs: number): void {
    if (!this.started || this.closing) return;
    if (Date.now() + inMs < this.promoteAt) this.schedulePromote(inMs);
  }

  private schedulePromote(inMs: number): void {
    if (this.closing) return;
    clearTimeout(this.promoteTimer);
    this.promoteAt = Date.now() + inMs;
    this.promoteTimer = setTimeout(() => {
      this.promoteAt = Infinity;
      this.promoting = this.promote();
    }, inMs);
  }

  private async promote(): Promise<void> {
    let next = PROMOTE_MAX_WAIT_MS;
    try {
      const r = Number(await PROMOTE.run(this.redis, [], [this.base, 500]));
      next = r < 0 ? PROMOTE_MAX_WAIT_MS : Math.min(r, PROMOTE_MAX_WAIT_MS);
    } catch (err) {
      this.logError("moving due retries failed", err);
    }
    if (this.promoteAt === Infinity) this.schedulePromote(next);
  }

  private async maintain(): Promise<void> {
    try {
      await this.redis.sendCommand([
        "ZREMRANGEBYSCORE", this.base + "failed", "-inf", String(Date.now() - this.o.retentionFailedMs),
      ]);
      const markerAge = Math.max(FINISHED_MARKER_MAX_AGE_MS, this.o.retentionFailedMs, this.o.retentionCompletedMs);
      await this.redis.sendCommand(["ZREMRANGEBYSCORE", this.base + "finished", "-inf", String(Date.now() - markerAge)]);
      for (const s of STREAMS) {
        const key = this.base + "stream:" + s;
        const consumers = (await this.redis.sendCommand(["XINFO", "CONSUMERS", key, GROUP]).catch(() => [])) as unknown[];
        for (const raw of consumers) {
          // RESP3: a map per consumer; RESP2: a flat list of name, value pairs.
          let c: Record<string, unknown> = {};
          if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) c[String(raw[i])] = raw[i + 1];
          else if (raw instanceof Map) c = Object.fromEntries(raw);
          else c = raw as Record<string, unknown>;
          const name = String(c.name);
          if (name !== this.o.consumerName && Number(c.pending) === 0 && Number(c.idle) > DEAD_CONSUMER_IDLE_MS) {
            await this.removeIdleConsumer(s, name, DEAD_CONSUMER_IDLE_MS);
          }
        }
      }
    } catch (err) {
      this.logError("job maintenance failed", err);
    }
  }

  /**
   * Removes another worker's consumer from a stream's group if, at that very moment, nothing is pending for
   * it and it has been idle for `minIdleMs` (one script: the listing above may be stale). True when removed.
   */
  async removeIdleConsumer(stream: StreamName, name: string, minIdleMs: number): Promise<boolean> {
    const r = await DELETE_IDLE_CONSUMER.run(this.redis, [], [this.base + "stream:" + stream, GROUP, name, minIdleMs]);
    return Number(r) === 1;
  }

  // ---- shutdown ----------------------------------------------------------------------------------------

  close(): Promise<void> {
    return (this.closed ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (!this.started) return;
    clearTimeout(this.promoteTimer);
    this.wake();
    if (this.blockingId !== null) {
      await this.redis.sendCommand(["CLIENT", "UNBLOCK", this.blockingId]).catch(() => undefined);
    }
    await Promise.race([this.fetchLoop, Bun.sleep(BLOCK_MS + 500)]);
    const running = [...this.running];
    const finished = await Promise.race([
      Promise.allSettled(running).then(() => true),
      Bun.sleep(this.o.shutdownGraceMs).then(() => false),
    ]);
    if (!finished && this.held.size > 0) {
      const left = [...this.held.values()];
      this.log.warn("handlers still running at shutdown; aborting them and handing their jobs back", { count: left.length });
      for (const h of left) h.ctrl.abort(new Error("the worker is shutting down"));
      await this.release(left).catch((err) =>
        this.log.warn("could not hand jobs back; they will be taken over after the visibility timeout", { error: errorText(err) }),
      );
    }
    if (this.flushing) await Promise.race([this.flushing, Bun.sleep(2_000)]);
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    await Promise.race([this.promoting, Bun.sleep(1_000)]);
    clearTimeout(this.promoteTimer);
    const b = this.blocking;
    this.blocking = null;
    if (b) {
      try {
        if (b.isOpen) b.destroy();
      } catch {}
    }
    this.log.info("job worker stopped", { consumer: this.o.consumerName });
  }
}
