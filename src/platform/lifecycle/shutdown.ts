// One shutdown deadline for the whole instance: from the signal, SHUTDOWN_TIMEOUT_MS covers the HTTP drain, the
// job worker and cron together (they stop side by side, not one after the other), then a short fixed close
// of Redis and the database. fly.toml's kill_timeout must exceed shutdownBudgetMs plus LiteFS's own exit.

/** After the deadline: closing the cache, Redis and the database, bounded. */
export const FINAL_CLOSE_MS = 2_000;

/**
 * The grace the queue and cron each wait for running work before aborting it and handing jobs back, chosen so
 * their hand-back normally happens inside the deadline (cron waits twice: for a tick being claimed, then for
 * its run, and both add fixed waits). Past the deadline the stop goes on without them regardless.
 */
export function backgroundGraceMs(shutdownTimeoutMs: number): number {
  return Math.floor(shutdownTimeoutMs / 3);
}

/** The longest a stop takes, signal to exit. */
export function shutdownBudgetMs(shutdownTimeoutMs: number): number {
  return shutdownTimeoutMs + FINAL_CLOSE_MS;
}

/** Milliseconds left until `deadline` (a performance.now() time), never negative. */
export const remainingMs = (deadline: number) => Math.max(0, deadline - performance.now());

/** `work`, or false once `ms` have passed without it settling (it keeps running; nothing waits for it). */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
