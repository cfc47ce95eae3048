// Where cron runs are recorded for GET /admin/cron: the last run of each schedule and a short history.
// Redis when there is one (the whole cluster's runs), else in process.
import type { Redis } from "../../deps.ts";

export type RunStatus = "running" | "completed" | "failed" | "aborted";

export interface RunRecord {
  name: string;
  /** The tick this run belongs to. */
  scheduled_at: string;
  started_at: string;
  finished_at: string | null;
  instance: string;
  status: RunStatus;
  error: string | null;
}

export interface RunStore {
  /** Records a run as it starts, or as it ends (the same record, updated). */
  record(run: RunRecord): Promise<void>;
  last(names: readonly string[]): Promise<Record<string, RunRecord | null>>;
  /** Newest first. */
  history(name: string, limit: number): Promise<RunRecord[]>;
}

const HISTORY = 100;

export class RedisRunStore implements RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async record(run: RunRecord): Promise<void> {
    const json = JSON.stringify(run);
    const multi = this.redis.multi().set(`${this.prefix}last:${run.name}`, json);
    if (run.status !== "running") {
      multi.lPush(`${this.prefix}runs:${run.name}`, json).lTrim(`${this.prefix}runs:${run.name}`, 0, HISTORY - 1);
    }
    await multi.exec();
  }

  async last(names: readonly string[]): Promise<Record<string, RunRecord | null>> {
    if (names.length === 0) return {};
    const values = (await this.redis.mGet(names.map((n) => `${this.prefix}last:${n}`))) as (string | null)[];
    return Object.fromEntries(names.map((n, i) => [n, values[i] ? (JSON.parse(values[i]!) as RunRecord) : null]));
  }

  async history(name: string, limit: number): Promise<RunRecord[]> {
    const values = (await this.redis.lRange(`${this.prefix}runs:${name}`, 0, Math.max(0, limit - 1))) as string[];
    return values.map((v) => JSON.parse(v) as RunRecord);
  }
}

export class MemoryRunStore implements RunStore {
  private readonly lastRuns = new Map<string, RunRecord>();
  private readonly runs = new Map<string, RunRecord[]>();

  async record(run: RunRecord): Promise<void> {
    this.lastRuns.set(run.name, { ...run });
    if (run.status === "running") return;
    const list = this.runs.get(run.name) ?? [];
    list.unshift({ ...run });
    list.length = Math.min(list.length, HISTORY);
    this.runs.set(run.name, list);
  }
  async last(names: readonly string[]): Promise<Record<string, RunRecord | null>> {
    return Object.fromEntries(names.map((n) => [n, this.lastRuns.get(n) ?? null]));
  }
  async history(name: string, limit: number): Promise<RunRecord[]> {
    return (this.runs.get(name) ?? []).slice(0, limit);
  }
}
