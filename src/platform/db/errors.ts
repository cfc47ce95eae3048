// What a database error means to a caller, on either driver (bun:sqlite's SQLiteError, libSQL's LibsqlError,
// Drizzle's wrapper around both): the codes are read from the error and its causes, never from the SQL.

function codesOf(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    for (const key of ["code", "extendedCode"] as const) {
      const code = (e as Record<string, unknown>)[key];
      if (typeof code === "string") codes.push(code);
    }
  }
  return codes;
}

const hasCode = (err: unknown, prefix: string) => codesOf(err).some((c) => c.startsWith(prefix));

/** Another connection holds the lock (SQLITE_BUSY and its extended codes). */
export const isBusy = (err: unknown) => hasCode(err, "SQLITE_BUSY") || hasCode(err, "SQLITE_LOCKED");

export function isUniqueViolation(err: unknown): boolean {
  return codesOf(err).some((c) => c.includes("CONSTRAINT_UNIQUE") || c.includes("CONSTRAINT_PRIMARYKEY"));
}

/** A write that could not run for a reason that passes: the lock held elsewhere, the disk full. Nothing of it committed. */
export class DatabaseUnavailable extends Error {
  readonly status = 503;
  constructor(
    readonly reason: "busy" | "full",
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = "DatabaseUnavailable";
  }
}

export const busyFor = (waitMs: number, cause: unknown) =>
  new DatabaseUnavailable("busy", `The database is locked by another writer (waited ${waitMs} ms); retry later`, { cause });

/** The 503 an error stands for, or null when it is not a passing storage condition. */
export function databaseUnavailable(err: unknown): DatabaseUnavailable | null {
  if (err instanceof DatabaseUnavailable) return err;
  if (isBusy(err)) return new DatabaseUnavailable("busy", "The database is locked by another writer; retry later", { cause: err });
  if (hasCode(err, "SQLITE_FULL")) return new DatabaseUnavailable("full", "The database disk is full; retry later", { cause: err });
  return null;
}
