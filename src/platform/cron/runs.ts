// Where cron runs are recorded for GET /admin/cron: the last run of each schedule and a short history.
// Redis when there is one (the whole cluster's runs), else in process.
import type { Redis } from "../redis.ts";
import { createLogger, type Logger } from "../observability/logger.ts";

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
const STATUSES: readonly string[] = ["running", "completed", "failed", "aborted"] satisfies RunStatus[];

/** A stored record, or null when it is not one (truncated, hand-edited, an older format). */
export function parseRunRecord(raw: string): RunRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const r = v as Record<string, unknown>;
  const str = (k: string) => typeof r[k] === "string";
  const strOrNull = (k: string) => r[k] === null || str(k);
  if (!str("name") || !str("scheduled_at") || !str("started_at") || !str("instance")) return null;
  if (!strOrNull("finished_at") || !strOrNull("error") || !STATUSES.includes(r.status as string)) return null;
  return r as unknown as RunRecord;
}

export class RedisRunStore implements RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly log: Logger = createLogger("warn", { component: "cron" }),
  ) {}

  /** An unreadable record is treated as absent (GET /admin/cron keeps answering), with a warning naming the key. */
  private parse(key: string, raw: string): RunRecord | null {
    const run = parseRunRecord(raw);
    if (run === null) this.log.warn("unreadable cron run record ignored", { key, length: raw.length });
    return run;
  }

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
    const keys = names.map((n) => `${this.prefix}last:${n}`);
    const values = (await this.redis.mGet(keys)) as (string | null)[];
    return Object.fromEntries(names.map((n, i) => [n, values[i] ? this.parse(keys[i]!, values[i]!) : null]));
  }

  async history(name: string, limit: number): Promise<RunRecord[]> {
    const key = `${this.prefix}runs:${name}`;
    const values = (await this.redis.lRange(key, 0, Math.max(0, limit - 1))) as string[];
    return values.flatMap((v) => this.parse(key, v) ?? []);
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
