// The background's figures for /metrics: job durations and failures by type, cron runs by schedule and status,
// scaler decisions. The queues, the scheduler and the scaler report through the small callbacks below; the
// renderer appends these families after the HTTP ones. (Rate-limit refusals: rate_limited_total, rate-limits.ts.)
import type { Database } from "../db/client.ts";
import type { QueueTypeCounts } from "../jobs/port.ts";
import { labels, metric } from "./metrics.ts";

const WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const JOB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Bounds the series whatever names a caller passes (job types and schedules are a fixed set in practice). */
const MAX_SERIES = 500;

class Histogram {
  private readonly series = new Map<string, { l: Record<string, string>; perBucket: number[]; count: number; sum: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(l: Record<string, string>, seconds: number): void {
    const key = JSON.stringify(l);
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return;
      s = { l, perBucket: this.buckets.map(() => 0), count: 0, sum: 0 };
      this.series.set(key, s);
    }
    s.count++;
    s.sum += seconds;
    const i = this.buckets.findIndex((b) => seconds <= b);
    if (i >= 0) s.perBucket[i]!++;
  }

  /** Observations per label set. */
  counts(): { labels: Record<string, string>; value: number }[] {
    return [...this.series.values()].map((s) => ({ labels: s.l, value: s.count }));
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.perBucket[i]!;
        out.push(`${this.name}_bucket${labels({ ...s.l, le: String(le) })} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labels({ ...s.l, le: "+Inf" })} ${s.count}`);
      out.push(`${this.name}_sum${labels(s.l)} ${s.sum}`, `${this.name}_count${labels(s.l)} ${s.count}`);
    }
  }
}

export class Counter {
  private readonly series = new Map<string, { l: Record<string, string>; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(l: Record<string, string>, n = 1): void {
    const key = JSON.stringify(l);
    const s = this.series.get(key);
    if (s) s.value += n;
    else if (this.series.size < MAX_SERIES) this.series.set(key, { l, value: n });
  }

  get(l: Record<string, string>): number {
    return this.series.get(JSON.stringify(l))?.value ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.series.values()) out.push(`${this.name}${labels(s.l)} ${s.value}`);
  }
}

/** How a job's run ended on this instance: done, to be retried, deferred (a circuit was open), failed for good. */
export type JobRunOutcome = "completed" | "retry" | "deferred" | "failed";

export class OpsMetrics {
  readonly jobDuration = new Histogram("job_duration_seconds", "Time a job handler ran on this instance, by job type and outcome.", JOB_BUCKETS);
  readonly jobFailures = new Counter("job_failures_total", "Job runs that did not complete, by job type and outcome (retry, deferred, failed).");
  readonly cronRuns = new Counter("cron_runs_total", "Cron runs this instance made, by schedule and status (completed, failed, aborted).");
  readonly cronDuration = new Histogram("cron_run_duration_seconds", "Time a cron run took on this instance, by schedule.", JOB_BUCKETS);
  readonly sqliteWrites = new Histogram(
    "sqlite_write_transaction_seconds",
    "Time of a write transaction on this instance, waiting for SQLite's write lock included, by result (ok, error).",
    WRITE_BUCKETS,
  );
  readonly scalerDecisions = new Counter("scaler_decisions_total", "Scaler decisions recorded by this instance, by region, action and outcome.");

  /** The queues' callback (QueueOptions.onRun). */
  readonly onJobRun = (type: string, seconds: number, outcome: JobRunOutcome): void => {
    this.jobDuration.observe({ type, outcome }, seconds);
    if (outcome !== "completed") this.jobFailures.inc({ type, outcome });
  };

  /** The scheduler's callback (SchedulerOptions.onRun). */
  readonly onCronRun = (schedule: string, status: string, seconds: number): void => {
    this.cronRuns.inc({ schedule, status });
    this.cronDuration.observe({ schedule }, seconds);
  };

  /** Times every write transaction of `database` (its one write path). */
  timeWrites(database: Database): void {
    const write = database.write.bind(database);
    database.write = (body) => {
      const started = performance.now();
      let result = "error";
      return write(body)
        .then((v) => {
          result = "ok";
          return v;
        })
        .finally(() => this.sqliteWrites.observe({ result }, (performance.now() - started) / 1000));
    };
  }

  render(out: string[]): void {
    this.sqliteWrites.render(out);
    this.jobDuration.render(out);
    this.jobFailures.render(out);
    this.cronRuns.render(out);
    this.cronDuration.render(out);
    this.scalerDecisions.render(out);
  }
}

/** The value of `p`, or null when it fails or takes longer than `ms` (a scrape or a dashboard poll never hangs on Redis). */
export async function valueWithin<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p.catch(() => null), new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const TYPE_STATES = ["waiting", "delayed", "running", "failed"] as const;

/** jobs_by_type{type,state} for a scrape, from the queue's per-type counts (read at scrape time, bounded wait). */
export function queueTypeMetrics(counts: () => Promise<QueueTypeCounts>, timeoutMs = 1_000) {
  return async (out: string[]): Promise<void> => {
    const c = await valueWithin(counts(), timeoutMs);
    if (!c) return;
    if (c.types.length > 0) {
      out.push("# HELP jobs_by_type Jobs per type and state (waiting, delayed, running cluster-wide, failed retained).", "# TYPE jobs_by_type gauge");
      for (const t of c.types) for (const state of TYPE_STATES) out.push(`jobs_by_type${labels({ type: t.type, state })} ${t[state]}`);
    }
    metric(out, "jobs_by_type_complete", "gauge", "0 when a state held more jobs than the per-type count reads (its oldest are counted).", c.complete ? 1 : 0);
  };
}
