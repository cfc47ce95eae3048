// Replication as the lab plays it: every instance opens the one SQLite file, so data is everywhere at once;
// what lags is each node's LiteFS position file (`<db>-pos` in its LITEFS_DIR), which the cache's replica
// guard reads. A lab-held connection notices each commit (PRAGMA data_version), counts it as the next txid,
// writes it to the primary's position file at once and to each replica's half that replica's round trip
// later, never while the replica's link is cut (it catches up on restore).
import { Database } from "bun:sqlite";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ReplicaPos {
  dir: string;
  oneWayMs: number;
  isCut(): boolean;
}

const hex16 = (n: number) => n.toString(16).padStart(16, "0");
const posText = (txid: number) => `${hex16(txid)}/${hex16((txid * 2654435761) % 2 ** 48)}\n`;

export function startReplication(opts: { dbFile: string; primaryDir: string; replicas: ReplicaPos[]; pollMs?: number }) {
  const db = new Database(opts.dbFile, { readonly: true });
  const version = db.query<{ data_version: number }, []>("PRAGMA data_version");
  let last = version.get()!.data_version;
  let txid = 1;
  const applied = new Map<string, number>();
  const write = (dir: string, t: number) => {
    if ((applied.get(dir) ?? 0) >= t) return;
    applied.set(dir, t);
    writeFileSync(join(dir, "app.db-pos"), posText(t));
  };
  write(opts.primaryDir, txid);
  for (const r of opts.replicas) write(r.dir, txid);
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const ship = (r: ReplicaPos, t: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!r.isCut()) write(r.dir, t);
    }, r.oneWayMs);
    timers.add(timer);
  };
  const poll = setInterval(() => {
    const v = version.get()!.data_version;
    if (v === last) return;
    last = v;
    txid++;
    write(opts.primaryDir, txid);
    for (const r of opts.replicas) ship(r, txid);
  }, opts.pollMs ?? 5);
  return {
    txid: () => txid,
    /** After a cut: each replica ships the latest position again (LiteFS streams what it missed). */
    catchUp() {
      for (const r of opts.replicas) ship(r, txid);
    },
    stop() {
      clearInterval(poll);
      for (const t of timers) clearTimeout(t);
      db.close();
    },
  };
}
