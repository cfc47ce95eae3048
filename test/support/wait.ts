// The one poll-until of the tests: wait for a condition instead of sleeping a fixed time and hoping.

export interface WaitOptions {
  timeoutMs?: number;
  /** Pause between two checks. */
  intervalMs?: number;
  /** A check that throws is asked again (a process still starting refuses connections); the last error is reported. */
  retryErrors?: boolean;
}

/**
 * Polls `check` until it returns a truthy value and returns that value; throws, naming `what`, once `timeoutMs`
 * has passed. Never asserts a duration: the limit only bounds a test that would otherwise hang.
 */
export async function waitUntil<T>(
  check: () => Promise<T> | T,
  timeoutMs: number | WaitOptions = 10_000,
  what = "condition",
): Promise<Exclude<T, null | undefined | false | 0 | "">> {
  const o = typeof timeoutMs === "number" ? { timeoutMs } : timeoutMs;
  const limit = o.timeoutMs ?? 10_000;
  const deadline = Date.now() + limit;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Exclude<T, null | undefined | false | 0 | "">;
    } catch (e) {
      if (!o.retryErrors) throw e;
      lastError = e;
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${limit} ms waiting for ${what}${cause}`);
    }
    await Bun.sleep(o.intervalMs ?? 20);
  }
}

/**
 * Sends one more request (with the request id it is given) and waits for its log line in `lines`: the log line
 * of a request answered before it has been written by then, so a missing or extra line is final.
 */
export async function logsSettled(lines: readonly string[], send: (requestId: string) => Promise<unknown>): Promise<void> {
  const rid = `settled-${crypto.randomUUID()}`;
  await send(rid);
  await waitUntil(() => lines.some((l) => l.includes(`"request_id":"${rid}"`)), 5_000, `the log line of ${rid}`);
}
