// Primary or replica. Without LITEFS_DIR every instance is a primary (local mode). Under LiteFS an instance
// is the primary only on positive evidence: LiteFS's HTTP API (`GET /info` on :20202) says `isPrimary`, or the
// database file in the FUSE mount is presented writable (LiteFS shows it 0666 on the primary, 0444 on a
// replica). A missing `.primary` proves nothing: a disconnected replica has none either. Undecided = replica
// with no known primary: no database-writing background work, and writes answer 503 until a primary is known.
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { filePathOf } from "../db/client.ts";

export type RoleState =
  | { kind: "primary" }
  | { kind: "replica"; primary: string }
  /** Not proven primary, and no primary known (LiteFS disconnected, or its API unreachable). */
  | { kind: "undecided" };

export interface Role {
  isPrimary(): boolean;
  /** The primary's hostname as LiteFS names it when this instance is a replica that knows it; else null. */
  primaryName(): string | null;
  state(): RoleState;
  /** Resolves once the first look at LiteFS is done (bounded); the start waits for it before it decides anything. */
  ready(): Promise<void>;
  close(): void;
}

const PRIMARY: RoleState = { kind: "primary" };
const UNDECIDED: RoleState = { kind: "undecided" };

export const alwaysPrimary: Role = {
  isPrimary: () => true,
  primaryName: () => null,
  state: () => PRIMARY,
  ready: () => Promise.resolve(),
  close: () => {},
};

export interface LiteFsRoleOptions {
  /** Base URL of LiteFS's HTTP API (LITEFS_API_URL); null: the file evidence only. */
  apiUrl?: string | null;
  /** The database file, when it lives in the FUSE mount (its mode is LiteFS's statement of the role). */
  databaseFile?: string | null;
  /** How long a file read is trusted. */
  fileMaxAgeMs?: number;
  /** How often the API is asked; an answer older than three periods is no evidence. */
  pollMs?: number;
  apiTimeoutMs?: number;
}

/** What LiteFS's `GET /info` answers (litefs.go NodeInfo). */
interface NodeInfo {
  isPrimary?: unknown;
  primary?: { hostname?: unknown };
}

export function liteFsRole(dir: string, opts: LiteFsRoleOptions = {}): Role {
  const fileMaxAgeMs = opts.fileMaxAgeMs ?? 100;
  const pollMs = opts.pollMs ?? 500;
  const apiTimeoutMs = opts.apiTimeoutMs ?? 1_000;
  const apiUrl = opts.apiUrl ? opts.apiUrl.replace(/\/+$/, "") : null;

  let fileAt = -Infinity;
  let fileState: RoleState | null = null;
  let api: { at: number; isPrimary: boolean } | null = null;

  const readFiles = (): RoleState | null => {
    const now = performance.now();
    if (now - fileAt < fileMaxAgeMs) return fileState;
    fileAt = now;
    fileState = null;
    try {
      const name = readFileSync(join(dir, ".primary"), "utf8").trim();
      if (name) fileState = { kind: "replica", primary: name };
    } catch {
      // No .primary: either the primary or a disconnected replica; the mode below may tell.
    }
    if (fileState === null && opts.databaseFile) {
      try {
        // LiteFS sets the mode from its own role at each stat: writable on the primary only.
        fileState = (statSync(opts.databaseFile).mode & 0o222) !== 0 ? PRIMARY : UNDECIDED;
      } catch {
        // Not there yet (a fresh mount): no evidence.
      }
    }
    return fileState;
  };

  const poll = async (): Promise<void> => {
    if (!apiUrl) return;
    try {
      const res = await fetch(`${apiUrl}/info`, { signal: AbortSignal.timeout(apiTimeoutMs) });
      if (!res.ok) return;
      const info = (await res.json()) as NodeInfo;
      api = { at: performance.now(), isPrimary: info.isPrimary === true };
    } catch {
      // Unreachable or garbled: the previous answer ages out.
    }
  };

  // The files are read at most fileMaxAgeMs ago, the API up to three polls ago: the files win. `.primary` is
  // LiteFS's word that this node is a connected replica; its absence with no other evidence names no primary
  // (an older API answer naming one is not trusted over the file that has since gone).
  const state = (): RoleState => {
    const file = readFiles();
    if (file !== null) return file;
    if (api !== null && api.isPrimary && performance.now() - api.at <= pollMs * 3) return PRIMARY;
    return UNDECIDED;
  };

  let timer: ReturnType<typeof setInterval> | null = null;
  let inFlight: Promise<void> | null = null;
  const tick = () => {
    inFlight ??= poll().finally(() => (inFlight = null));
  };
  const first = apiUrl ? poll() : Promise.resolve();
  if (apiUrl) {
    timer = setInterval(tick, pollMs);
    timer.unref?.();
  }

  return {
    isPrimary: () => state().kind === "primary",
    primaryName: () => {
      const s = state();
      return s.kind === "replica" ? s.primary : null;
    },
    state,
    ready: () => first,
    close: () => {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

export interface InstanceRoleOptions {
  /** LiteFS's mount (LITEFS_DIR); without it the instance is always the primary. */
  litefsDir?: string;
  /** LiteFS's HTTP API. */
  litefsApiUrl: string;
  databaseUrl: string;
}

/** The role of an instance: LiteFS's when it runs on a LiteFS mount, else always primary. */
export function instanceRole(opts: InstanceRoleOptions): Role {
  if (!opts.litefsDir) return alwaysPrimary;
  const dir = resolve(opts.litefsDir);
  const file = filePathOf(opts.databaseUrl);
  return liteFsRole(dir, {
    apiUrl: opts.litefsApiUrl,
    // Only a file LiteFS presents says anything; one outside the mount is a plain file.
    databaseFile: file !== null && file.startsWith(dir + "/") ? file : null,
  });
}
