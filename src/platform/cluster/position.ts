// The LiteFS replication position of this node's database: the `<db>-pos` file next to the database in
// the LiteFS mount holds "<16 hex txid>/<16 hex checksum>\n". The primary stamps cache invalidations with
// its txid; a replica compares its own before it trusts (or caches) what it reads.
import { readFileSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";

export interface Position {
  /** 16 lowercase hex digits: fixed width, so string order is numeric order. */
  txid: string;
  checksum: string;
}

export interface PositionReader {
  /** The current position, or null when it cannot be read. */
  read(): Position | null;
  /** Whether this node has applied transaction `txid` (16 hex digits) or later; re-reads the file when needed. */
  atLeast(txid: string): boolean;
}

const POS_RE = /^([0-9a-fA-F]{16})\/([0-9a-fA-F]{16})\s*$/;
export const TXID_RE = /^[0-9a-f]{16}$/;

export function parsePosition(text: string): Position | null {
  const m = POS_RE.exec(text);
  if (!m) return null;
  return { txid: m[1]!.toLowerCase(), checksum: m[2]!.toLowerCase() };
}

/**
 * Where the pos file of DATABASE_URL lives under LITEFS_DIR, or null when not on LiteFS (no LITEFS_DIR,
 * or a non-file database URL).
 */
export function positionFile(databaseUrl: string, litefsDir: string | undefined): string | null {
  if (!litefsDir || !databaseUrl.startsWith("file:")) return null;
  const raw = databaseUrl.slice("file:".length).split("?")[0]!;
  if (raw === "" || raw === ":memory:") return null;
  const dbPath = isAbsolute(raw) ? raw : resolve(raw);
  const dir = resolve(litefsDir);
  const inMount = dbPath.startsWith(dir + "/");
  return inMount ? `${dbPath}-pos` : join(dir, `${basename(dbPath)}-pos`);
}

/** Reads the pos file at most once per `maxAgeMs` (atLeast re-reads sooner when the cached txid is behind). */
export function filePosition(file: string, maxAgeMs = 50): PositionReader {
  let cached: Position | null = null;
  let readAt = -Infinity;
  const load = () => {
    readAt = performance.now();
    try {
      cached = parsePosition(readFileSync(file, "utf8"));
    } catch {
      cached = null;
    }
    return cached;
  };
  const read = () => (performance.now() - readAt < maxAgeMs ? cached : load());
  return {
    read,
    atLeast(txid) {
      const p = read();
      if (p !== null && p.txid >= txid) return true;
      const fresh = load();
      return fresh !== null && fresh.txid >= txid;
    },
  };
}

/** Not on LiteFS: there is no position, and every node is as current as the one database. */
export const noPosition: PositionReader = { read: () => null, atLeast: () => true };

export function openPosition(databaseUrl: string, litefsDir: string | undefined): PositionReader {
  const file = positionFile(databaseUrl, litefsDir);
  return file === null ? noPosition : filePosition(file);
}
