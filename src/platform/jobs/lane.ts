// A one-at-a-time lane for the handlers that write the database. SQLite has one writer, and libSQL's local
// client runs statements synchronously on pooled connections: a write issued while another connection of the
// same process holds a write transaction busy-waits on the event loop (up to busy_timeout), so the holder can
// never commit, and one of them fails after the wait. Running database jobs one at a time per instance keeps
// two job handlers from ever doing that to each other.
export class Lane {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `fn` after every earlier call has finished. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
