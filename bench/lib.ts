// Shared by the benchmarks: result files and a plain table.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";

export const RESULTS = join(import.meta.dir, "results");

export function writeResult(name: string, data: Record<string, unknown>): string {
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, `${name}.json`);
  writeFileSync(
    file,
    // The load average says how busy the (shared) machine was when the figures were taken.
    JSON.stringify({ name, at: new Date().toISOString(), bun: Bun.version, cpus: cpus().length, load_avg_1m: loadavg()[0], ...data }, null, 2) + "\n",
  );
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
