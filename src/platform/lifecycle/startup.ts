// An instance's start, one named part at a time, remembering how to close each. A start that fails part-way
// closes what it had already opened (last first) before it rethrows, so a refused start leaves no connection,
// timer or file handle behind (a test process, or a supervisor's retry, would otherwise carry them); the error
// says which part failed. The same list closes a started instance, so the order is written once.
import { FINAL_CLOSE_MS, within } from "./shutdown.ts";

/** Longest an enclosing error's message may take in a StartError's line; the innermost one is kept whole. */
const OUTER_MESSAGE_CHARS = 120;

/**
 * The error and its causes as one line, outermost first: a wrapped error often says what was tried over several
 * lines (drizzle quotes the whole failed statement) while its cause says why, in a few words.
 */
function oneLine(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; e = e instanceof Error ? e.cause : undefined, depth++) {
    parts.push((e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").trim());
  }
  return parts
    .map((m, i) => (i < parts.length - 1 && m.length > OUTER_MESSAGE_CHARS ? m.slice(0, OUTER_MESSAGE_CHARS) + "…" : m))
    .join(": ");
}

/** A start that failed: `part` names what could not be opened; `cause` is the original error. The message is one line. */
export class StartError extends Error {
  constructor(
    readonly part: string,
    cause: unknown,
  ) {
    super(`${part} failed: ${oneLine(cause)}`, { cause });
    this.name = "StartError";
  }
}

export class Opened {
  private readonly closers: { part: string; close: () => unknown }[] = [];
  private closing: Promise<void> | undefined;

  /** `onCloseError` hears of a part that failed to close; the parts before it close regardless. */
  constructor(private readonly onCloseError: (part: string, err: unknown) => void) {}

  /**
   * Opens one part. If it throws, everything opened before it is closed (bounded by FINAL_CLOSE_MS) and a
   * StartError naming `part` is thrown. `close`, when given, runs in close(), before the parts opened earlier.
   */
  async open<T>(part: string, open: () => T | Promise<T>, close?: (value: T) => unknown): Promise<T> {
    let value: T;
    try {
      value = await open();
    } catch (err) {
      throw await this.fail(part, err);
    }
    if (close) this.closers.push({ part, close: () => close(value) });
    return value;
  }

  /** Closes everything opened so far and returns the StartError to throw (`err` itself if it is one already). */
  async fail(part: string, err: unknown): Promise<StartError> {
    await within(this.close(), FINAL_CLOSE_MS);
    return err instanceof StartError ? err : new StartError(part, err);
  }

  /** Closes the opened parts, last opened first; runs once (a second call waits for the first). */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const { part, close } of this.closers.toReversed()) {
        try {
          await close();
        } catch (err) {
          this.onCloseError(part, err);
        }
      }
    })());
  }
}
