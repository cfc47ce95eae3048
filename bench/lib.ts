// Shared by the benchmarks: result files and a plain table.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";

export const RESULTS = join(import.meta.dir, "results");

/**
 * The variables that make a run partial: it measures only part of a bench (ABUSE_BODIES, BENCH_DB_ONLY,
 * BENCH_L1_ONLY), or a service set up unlike the published one (BENCH_SERVICE_ENV). Such a run prints its
 * figures and writes neither its result file (which it would replace whole) nor docs/benchmarks.md.
 */
const PARTIAL_RUN_VARIABLES = ["ABUSE_BODIES", "BENCH_DB_ONLY", "BENCH_L1_ONLY", "BENCH_SERVICE_ENV"];

/** What makes this run partial (`NAME=value ...`), or null for a run of record. */
export function partialRun(): string | null {
  const set = PARTIAL_RUN_VARIABLES.filter((v) => (process.env[v] ?? "") !== "").map((v) => `${v}=${process.env[v]}`);
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
