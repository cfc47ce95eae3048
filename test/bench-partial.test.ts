// A partial benchmark run (one segment, a changed service) prints its figures and writes neither its result
// file nor the figures page: either would replace the run of record with part of one (bench/lib.ts partialRun).
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { partialRun, RESULTS, writeResult } from "../bench/lib.ts";
import { writeReport } from "../bench/report.ts";

const PAGE = join(import.meta.dir, "..", "docs", "benchmarks.md");
const saved = { ...process.env };
afterEach(() => {
  for (const k of ["ABUSE_BODIES", "BENCH_DB_ONLY", "BENCH_L1_ONLY", "BENCH_SERVICE_ENV"]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe("partial benchmark runs", () => {
  for (const [variable, value] of [
    ["ABUSE_BODIES", "nested ["],
    ["BENCH_DB_ONLY", "writes"],
    ["BENCH_L1_ONLY", "1"],
    ["BENCH_SERVICE_ENV", '{"LOG_LEVEL":"silent"}'],
  ] as const) {
    test(`${variable} set: no result file, no page`, () => {
      process.env[variable] = value;
      expect(partialRun()).toBe(`${variable}=${value}`);
      const name = `partial-run-test-${process.pid}`;
      expect(writeResult(name, { figure: 1 })).toBeNull();
      expect(existsSync(join(RESULTS, `${name}.json`))).toBe(false);
      const before = existsSync(PAGE) ? statSync(PAGE).mtimeMs : null;
      expect(writeReport()).toBeNull();
      expect(existsSync(PAGE) ? statSync(PAGE).mtimeMs : null).toBe(before);
    });
  }

  test("none of them set (or set empty): a run of record", () => {
    for (const k of ["ABUSE_BODIES", "BENCH_DB_ONLY", "BENCH_L1_ONLY", "BENCH_SERVICE_ENV"]) delete process.env[k];
    process.env.BENCH_DB_ONLY = "";
    expect(partialRun()).toBeNull();
  });
});
