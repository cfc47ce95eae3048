// The repositories' hot statements on bun:sqlite two ways, in one process, interleaved: Drizzle's own prepared
// statement and the one statement.ts derives from the same query (the same SQL text, run without Drizzle's
// per-call work). CPU time (process.cpuUsage) per call, median of the rounds. Writes run inside a transaction
// rolled back at the end of each round. A diagnostic for docs/database.md, not part of `bun run bench`.
//
//   bun run bench/db-statements.ts
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../src/platform/db/client.ts";
import { sqliteOf } from "../src/platform/db/step.ts";
import { userStatements } from "../src/modules/users/repository.ts";
import { postStatements } from "../src/modules/posts/repository.ts";
import { preferenceStatements } from "../src/modules/preferences/repository.ts";
import { build } from "./db.bench.ts";
import { table } from "./lib.ts";

const dir = mkdtempSync(join(import.meta.dir, "..", ".tmp", "db-statements-"));
const file = join(dir, "app.db");
await build(file, 1_000);
const database = await openDatabase(`file:${file}`, { setWal: true });
const { db } = database;
const c = sqliteOf(db)!;
const begin = c.prepare("BEGIN");
const rollback = c.prepare("ROLLBACK");
const U = userStatements(db);
const P = postStatements(db);
const F = preferenceStatements(db);
const now = new Date().toISOString();

type Call = (values: object) => unknown;
interface Case {
  name: string;
  statement: unknown;
  method: "get" | "all" | "run";
  values: (id: number) => object;
  write?: boolean;
}
const cases: Case[] = [
  { name: "users.byId get", statement: U.byId, method: "get", values: (id) => ({ id }) },
  { name: "users.exists get", statement: U.exists, method: "get", values: (id) => ({ id }) },
  { name: "users.pageFrom all (20 rows)", statement: U.pageFrom, method: "all", values: (id) => ({ from: id, limit: 20 }) },
  { name: "posts.page all (10 rows)", statement: P.page, method: "all", values: (userId) => ({ userId, limit: 10, offset: 0 }) },
  { name: "preferences.getStamped get", statement: F.getStamped, method: "get", values: (userId) => ({ userId }) },
  {
    name: "preferences.put run",
    statement: F.put,
    method: "run",
    values: (userId) => ({ userId, data: { theme: "dark", n: 1 }, keyWrittenAt: { theme: 1 }, now }),
    write: true,
  },
  { name: "posts.insert get", statement: P.insert, method: "get", values: (userId) => ({ userId, title: "t", content: "c", now }), write: true },
  {
    name: "users.update get",
    statement: U.update,
    method: "get",
    values: (id) => ({ id, email: null, passwordHash: null, fullName: "X", isAdmin: null, now }),
    write: true,
  },
];

const N = 4_000;
const ROUNDS = 21;
function us(call: Call, values: Case["values"], write = false): number {
  const c0 = process.cpuUsage();
  if (write) begin.run();
  for (let i = 0; i < N; i++) call(values(1 + (i % 1000)));
  if (write) rollback.run();
  const t = process.cpuUsage(c0);
  return (t.user + t.system) / N;
}
const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const round1 = (x: number) => Math.round(x * 100) / 100;
const rows: Record<string, string | number>[] = [];
for (const k of cases) {
  const s = k.statement as Record<Case["method"], Call> & { query: { prepare(): Record<Case["method"], Call> } };
  const drizzle = s.query.prepare();
  const ours: Call = (v) => s[k.method](v);
  const theirs: Call = (v) => drizzle[k.method](v);
  us(ours, k.values, k.write);
  us(theirs, k.values, k.write);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternating which goes first, so neither always runs on a warmer cache.
    if (r % 2) {
      a.push(us(theirs, k.values, k.write));
      b.push(us(ours, k.values, k.write));
    } else {
      b.push(us(ours, k.values, k.write));
      a.push(us(theirs, k.values, k.write));
    }
  }
  rows.push({
    statement: k.name,
    "Drizzle prepared us": round1(median(a)),
    "derived us": round1(median(b)),
    "derived / Drizzle": round1(median(b) / median(a)),
  });
}
table(rows);
database.close();
rmSync(dir, { recursive: true, force: true });
