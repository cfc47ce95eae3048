// Coalesces tag invalidations: while one is on its way to Redis, those made meanwhile wait, then go together
// in one call (their tags merged, one token, one bus message). Writing to the socket is most of what an
// invalidation costs this process, so under concurrent writes that cost is shared; alone, an invalidation
// still leaves at once. Each caller's promise settles when the call carrying its tags has returned, so no
// write is answered before its invalidation is in Redis. The calls share one connection, so Redis runs them
// in the order they were sent.

/** Tags one call carries at most: bounds the script's KEYS and the bus message (each tag is in both). */
export const MAX_BATCH_TAGS = 1_000;

interface Waiting {
  tags: readonly string[];
  txid: string | null;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Sends merged tags with the latest txid among them; must settle, as an invalidation does (failures owed). */
export type SendInvalidation = (tags: readonly string[], txid: string | null) => Promise<void>;

export class InvalidationBatch {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `patienceMs`: how long waiting invalidations wait for a call that has not returned before they go anyway;
   * with a hung Redis a write then waits that much longer than alone at most, not a second call's timeout.
   */
  constructor(
    private readonly send: SendInvalidation,
    private readonly patienceMs: () => number,
  ) {}

  add(tags: readonly string[], txid: string | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ tags, txid, resolve, reject });
      // Synchronously up to the call's first await: alone, the invalidation is written in this very turn.
      if (this.inFlight === 0) this.flush();
      else if (this.timer === undefined) {
        this.timer = setTimeout(() => this.flush(), this.patienceMs());
        (this.timer as { unref?: () => void }).unref?.();
      }
    });
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0) void this.sendBatch(this.take());
  }

  private async sendBatch(batch: Waiting[]): Promise<void> {
    this.inFlight++;
    try {
      if (batch.length === 1) await this.send(batch[0]!.tags, batch[0]!.txid);
      else await this.send(...merge(batch));
      for (const w of batch) w.resolve();
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.inFlight--;
      if (this.queue.length > 0) this.flush();
    }
  }

  /** The oldest waiting invalidations up to the bound (always at least one, however many tags it has). */
  private take(): Waiting[] {
    let n = 0;
    let tags = 0;
    while (n < this.queue.length && (n === 0 || tags + this.queue[n]!.tags.length <= MAX_BATCH_TAGS)) tags += this.queue[n++]!.tags.length;
    return this.queue.splice(0, n);
  }
}

/**
 * One set of tags, first occurrence first (a repeated tag needs one new token), and the greatest txid: a
 * replica then waits for the latest write among them (txids are fixed-width hex, so the greatest is the latest).
 */
function merge(batch: readonly Waiting[]): [string[], string | null] {
  const tags = new Set<string>();
  let txid: string | null = null;
  for (const w of batch) {
    for (const t of w.tags) tags.add(t);
    if (w.txid !== null && (txid === null || w.txid > txid)) txid = w.txid;
  }
  return [[...tags], txid];
}
