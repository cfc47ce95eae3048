// A partial benchmark run (one segment, a changed service) prints its figures and writes neither its result
// file nor the figures page: either would replace the run of record with part of one (bench/lib.ts partialRun).
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { bigUsers, BIG_USERS_OF_RECORD, PARTIAL_RUN_VARIABLES, partialRun, RESULTS, writeResult } from "../bench/lib.ts";
import { writeReport } from "../bench/report.ts";

const PAGE = join(import.meta.dir, "..", "docs", "benchmarks.md");
const saved = { ...process.env };
const VARIABLES = Object.keys(PARTIAL_RUN_VARIABLES);
afterEach(() => {
  for (const k of VARIABLES) {
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
    ["BENCH_BIG_USERS", "1000"],
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
    for (const k of VARIABLES) delete process.env[k];
    process.env.BENCH_DB_ONLY = "";
    expect(partialRun()).toBeNull();
    expect(bigUsers()).toBe(BIG_USERS_OF_RECORD);
  });

  test("BENCH_BIG_USERS at the run of record's count is a run of record; another count is partial", () => {
    for (const k of VARIABLES) delete process.env[k];
    process.env.BENCH_BIG_USERS = String(BIG_USERS_OF_RECORD);
    expect(partialRun()).toBeNull();
    process.env.BENCH_BIG_USERS = "20000";
    expect(bigUsers()).toBe(20_000);
    expect(partialRun()).toBe("BENCH_BIG_USERS=20000");
  });
});
