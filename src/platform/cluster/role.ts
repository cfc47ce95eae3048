// Primary or replica. Under LiteFS the `.primary` file in the mount exists only on a replica and holds
// the primary's hostname; without LITEFS_DIR every instance is a primary (local mode).
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface Role {
  isPrimary(): boolean;
  /** The primary's hostname as LiteFS names it, or null when this instance is the primary. */
  primaryName(): string | null;
}

export const alwaysPrimary: Role = { isPrimary: () => true, primaryName: () => null };

/** Reads `${dir}/.primary` on use, at most once per `maxAgeMs`. */
export function liteFsRole(dir: string, maxAgeMs = 1_000): Role {
  let checkedAt = -Infinity;
  let primary: string | null = null;
  const read = () => {
    const now = performance.now();
    if (now - checkedAt < maxAgeMs) return primary;
    checkedAt = now;
    try {
      primary = readFileSync(join(dir, ".primary"), "utf8").trim() || null;
    } catch {
      primary = null;
    }
    return primary;
  };
  return { isPrimary: () => read() === null, primaryName: read };
}
