// Cron for the cluster: every instance keeps the schedules' clocks (croner, UTC), and at each tick the one
// holding the schedule's lease claims that tick (SET NX on name + scheduled time) and runs it. The lease makes
// one instance the runner and aborts its run if the lease is lost; the claim makes sure a handover (an old
// holder paused past its lease, then resuming) never runs the same tick twice.
import { Cron } from "croner";
import type { Logger } from "../observability/logger.ts";
import { Lease, type LeaseStore } from "./lease.ts";
import type { RunRecord, RunStatus, RunStore } from "./runs.ts";

export interface CronContext {
  /** The tick being run. */
  scheduledAt: Date;
  /** Aborted when this instance loses the schedule's lease or shuts down past its grace period. */
  signal: AbortSignal;
  instanceId: string;
  logger: Logger;
}

export interface ScheduleDefinition<D> {
  /** Unique; names the lease, the claims and the records. */
  name: string;
  /** croner pattern in UTC: five fields, or six with seconds first. */
  pattern: string;
  /** True when the run writes the database: only instances that can write compete for it. */
  writesDb: boolean;
  description?: string;
  run(deps: D, ctx: CronContext): Promise<void>;
}

export interface CronStatus {
  name: string;
  schedule: string;
  description: string | null;
  writes_db: boolean;
  last_run_at: string | null;
  last_instance: string | null;
  last_status: RunStatus | null;
  last_finished_at: string | null;
  last_error: string | null;
  next_run_at: string | null;
}

/** What the HTTP layer reads (GET /admin/cron). */
export interface CronView {
  list(): Promise<CronStatus[]>;
}

export interface SchedulerOptions<D> {
  schedules: readonly ScheduleDefinition<D>[];
  leases: LeaseStore;
  runs: RunStore;
  instanceId: string;
  canWrite: () => boolean;
  leaseMs: number;
  /** How long close() waits for running schedules before aborting them. */
  shutdownGraceMs: number;
  logger: Logger;
  /** Told of every run this instance makes (the cron metrics). */
  onRun?: (schedule: string, status: RunStatus, seconds: number) => void;
}

class ScheduleRunner<D> {
  readonly cron: Cron;
  readonly lease: Lease;
  private timer: ReturnType<typeof setTimeout> | undefined;
  running: Promise<void> | null = null;
  /** Ticks between their timer and their run (lease, claim): close() waits for them before releasing. */
  readonly ticking = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  private stopped = false;
  private deps!: D;

  constructor(
    readonly def: ScheduleDefinition<D>,
    private readonly o: SchedulerOptions<D>,
    private readonly log: Logger,
  ) {
    this.cron = new Cron(def.pattern, { timezone: "UTC", paused: true });
    this.lease = new Lease(o.leases, `cron:${def.name}`, o.leaseMs, o.instanceId, log);
  }

  start(deps: D): void {
    this.deps = deps;
    this.plan(new Date());
  }

  private plan(after: Date): void {
    if (this.stopped) return;
    const next = this.cron.nextRun(after);
    if (!next) return;
    // setTimeout can fire a little early; never early for the tick.
    const wait = () => {
      const ms = next.getTime() - Date.now();
      this.timer = setTimeout(() => (Date.now() < next.getTime() ? wait() : this.track(this.tick(next))), Math.max(0, ms));
    };
    wait();
  }

  private track(tick: Promise<void>): void {
    this.ticking.add(tick);
    void tick.finally(() => this.ticking.delete(tick));
  }

  private async tick(at: Date): Promise<void> {
    const late = Date.now() - at.getTime();
    // A tick found more than a lease late (the process was paused) is left alone; plan from now.
    this.plan(late > this.o.leaseMs ? new Date() : at);
    if (late > this.o.leaseMs) {
      this.log.warn("cron tick skipped: this instance woke too late", { schedule: this.def.name, late_ms: late });
      return;
    }
    if (this.running) {
      this.log.warn("cron tick skipped: the previous run is still going", { schedule: this.def.name });
      return;
    }
    if (this.def.writesDb && !this.o.canWrite()) {
      await this.lease.release();
      return;
    }
    try {
      if (!(await this.lease.ensure())) return;
      if (this.stopped) {
        // close() began while the lease was being taken: do not claim a tick this instance will not run.
        await this.lease.release();
        return;
      }
      const claimTtl = Math.max(60_000, 10 * this.o.leaseMs);
      if (!(await this.o.leases.claim(`cron:${this.def.name}:${at.getTime()}`, this.o.instanceId, claimTtl))) return;
    } catch (err) {
      this.log.warn("cron tick skipped: lease store unreachable", { schedule: this.def.name, error: (err as Error).message });
      return;
    }
    // Claimed: run it even if close() began meanwhile (close waits for this tick, then for the run).
    this.running = this.execute(at).finally(() => (this.running = null));
  }

  private async execute(at: Date): Promise<void> {
    const signal = AbortSignal.any([this.lease.signal, this.stop.signal]);
    const record: RunRecord = {
      name: this.def.name,
      scheduled_at: at.toISOString(),
      started_at: new Date().toISOString(),
      finished_at: null,
      instance: this.o.instanceId,
      status: "running",
      error: null,
    };
    await this.o.runs.record(record).catch(() => undefined);
    try {
      await this.def.run(this.deps, { scheduledAt: at, signal, instanceId: this.o.instanceId, logger: this.log });
      record.status = signal.aborted ? "aborted" : "completed";
    } catch (err) {
      record.status = signal.aborted ? "aborted" : "failed";
      record.error = (err as Error)?.message ?? String(err);
    }
    if (signal.aborted) record.error ??= (signal.reason as Error)?.message ?? "aborted";
    record.finished_at = new Date().toISOString();
    this.o.onRun?.(this.def.name, record.status, (Date.now() - Date.parse(record.started_at)) / 1000);
    if (record.status === "completed") this.log.debug("cron run completed", { schedule: this.def.name, scheduled_at: record.scheduled_at });
    else this.log.warn(`cron run ${record.status}`, { schedule: this.def.name, scheduled_at: record.scheduled_at, error: record.error });
    await this.o.runs.record(record).catch((err) => this.log.warn("could not record a cron run", { error: (err as Error).message }));
  }

  halt(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  abort(): void {
    this.stop.abort(new Error("the instance is shutting down"));
  }
}

export class CronScheduler<D> implements CronView {
  private readonly runners: ScheduleRunner<D>[];
  private readonly log: Logger;
  private started = false;
  private closed: Promise<void> | undefined;

  constructor(private readonly o: SchedulerOptions<D>) {
    this.log = o.logger.child({ component: "cron" });
    const names = new Set<string>();
    for (const s of o.schedules) {
      if (names.has(s.name)) throw new Error(`two cron schedules are named "${s.name}"`);
      names.add(s.name);
    }
    this.runners = o.schedules.map((def) => new ScheduleRunner(def, o, this.log));
  }

  /** Adds a schedule before the clocks start (the root adds the features' schedules once they are built). */
  add(def: ScheduleDefinition<D>): void {
    if (this.started) throw new Error(`cron schedule "${def.name}" added after the start`);
    if (this.runners.some((r) => r.def.name === def.name)) throw new Error(`two cron schedules are named "${def.name}"`);
    this.runners.push(new ScheduleRunner(def, this.o, this.log));
  }

  /** Starts the clocks; `deps` is what each schedule's run receives. */
  start(deps: D): void {
    if (this.started) return;
    this.started = true;
    for (const r of this.runners) r.start(deps);
    this.log.info("cron started", { schedules: this.runners.map((r) => `${r.def.name} (${r.def.pattern})`) });
  }

  /** The schedules with their last recorded run (cluster-wide with Redis) and their next tick. */
  async list(): Promise<CronStatus[]> {
    const last = await this.o.runs.last(this.runners.map((r) => r.def.name));
    const now = new Date();
    return this.runners.map((r) => {
      const run = last[r.def.name] ?? null;
      return {
        name: r.def.name,
        schedule: r.def.pattern,
        description: r.def.description ?? null,
        writes_db: r.def.writesDb,
        last_run_at: run?.started_at ?? null,
        last_instance: run?.instance ?? null,
        last_status: run?.status ?? null,
        last_finished_at: run?.finished_at ?? null,
        last_error: run?.error ?? null,
        next_run_at: r.cron.nextRun(now)?.toISOString() ?? null,
      };
    });
  }

  history(name: string, limit: number): Promise<RunRecord[]> {
    return this.o.runs.history(name, limit);
  }

  /** Stops ticking, lets running schedules finish (bounded, then aborts them) and releases the leases. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      for (const r of this.runners) r.halt();
      // A tick may be inside lease.ensure() or the claim: let it settle first, so the lease it may take is
      // released below and the tick it claimed is run, not lost. Bounded: a Redis that does not answer could
      // hold it forever (the leases' close() then refuses any acquire that lands later).
      const ticking = this.runners.flatMap((r) => [...r.ticking]);
      if (ticking.length > 0) await Promise.race([Promise.allSettled(ticking), Bun.sleep(this.o.shutdownGraceMs)]);
      const running = this.runners.flatMap((r) => (r.running ? [r.running] : []));
      if (running.length > 0) {
        const done = await Promise.race([
          Promise.allSettled(running).then(() => true),
          Bun.sleep(this.o.shutdownGraceMs).then(() => false),
        ]);
        if (!done) {
          for (const r of this.runners) r.abort();
          await Promise.race([Promise.allSettled(running), Bun.sleep(1_000)]);
        }
      }
      await Promise.all(this.runners.map((r) => r.lease.close()));
      if (this.started) this.log.info("cron stopped");
    })());
  }
}
