// Shared by the benchmarks: result files and a plain table.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";

export const RESULTS = join(import.meta.dir, "results");

/** The users of the database bench's size segment in a run of record; BENCH_BIG_USERS may change it (partial). */
export const BIG_USERS_OF_RECORD = 1_000_000;

/** The users the database bench's size segment builds this run. */
export function bigUsers(): number {
  const v = process.env.BENCH_BIG_USERS ?? "";
  return v === "" ? BIG_USERS_OF_RECORD : Number(v);
}

const isSet = (v: string) => v !== "";

/**
 * The variables that make a run partial: it measures only part of a bench (ABUSE_BODIES, BENCH_DB_ONLY,
 * BENCH_L1_ONLY), or a service or a dataset set up unlike the published one (BENCH_SERVICE_ENV, a BENCH_BIG_USERS
 * other than the run of record's). Such a run prints its figures and writes neither its result file (which it
 * would replace whole) nor docs/benchmarks.md.
 */
export const PARTIAL_RUN_VARIABLES: Record<string, (value: string) => boolean> = {
  ABUSE_BODIES: isSet,
  BENCH_DB_ONLY: isSet,
  BENCH_L1_ONLY: isSet,
  BENCH_SERVICE_ENV: isSet,
  BENCH_BIG_USERS: (v) => isSet(v) && Number(v) !== BIG_USERS_OF_RECORD,
};

/** What makes this run partial (`NAME=value ...`), or null for a run of record. */
export function partialRun(): string | null {
  const set = Object.entries(PARTIAL_RUN_VARIABLES)
    .filter(([name, partial]) => partial(process.env[name] ?? ""))
    .map(([name]) => `${name}=${process.env[name]}`);
  return set.length > 0 ? set.join(" ") : null;
}

/** Writes bench/results/<name>.json and says so; a partial run writes nothing (see partialRun). */
export function writeResult(name: string, data: Record<string, unknown>): string | null {
  const partial = partialRun();
  if (partial) {
    console.log(`partial run (${partial}): bench/results/${name}.json not written`);
    return null;
  }
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${name}.json`);
  writeFileSync(
    file,
    // The load average says how busy the (shared) machine was when the figures were taken.
    JSON.stringify({ name, at: new Date().toISOString(), bun: Bun.version, cpus: cpus().length, load_avg_1m: loadavg()[0], ...data }, null, 2) + "\n",
  );
  console.log(`wrote ${file}`);
  return file;
}

export function table(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const fmt = (v: string | number) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c] ?? "").length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ");
  console.log(line(cols));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => fmt(r[c] ?? ""))));
}
