// `bun run bench`: runs every bench/*.bench.ts in turn, each in its own process (so one's memory and JIT
// state cannot colour another's). Each writes bench/results/<name>.json and prints its own table.
// `bun run bench -- cache` runs only the files whose name contains "cache". Then docs/benchmarks.md is
// regenerated from every result file (bench/report.ts), except after a partial run (lib.ts partialRun).
import { Glob } from "bun";
import { join } from "node:path";
import { writeReport } from "./report.ts";

const filter = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const dir = import.meta.dir;
const files = [...new Glob("*.bench.ts").scanSync(dir)].sort().filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error("no benchmark matched", filter);
  process.exit(1);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const proc = Bun.spawn(["bun", "run", join(dir, f)], { stdout: "inherit", stderr: "inherit", cwd: join(dir, "..") });
  const code = await proc.exited;
  if (code !== 0) {
    console.error(`${f} exited ${code}`);
    failed++;
  }
}
console.log();
writeReport();
process.exit(failed > 0 ? 1 : 0);
