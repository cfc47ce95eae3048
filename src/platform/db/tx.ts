// One transaction body for both drivers. A body is a generator that yields each database call's result
// (`yield* q(repo.call(tx, ...))`): on bun:sqlite every call has already run synchronously and the body runs
// to its end inside BEGIN IMMEDIATE ... COMMIT without giving the event loop back; on libSQL each yielded
// promise is awaited inside the client's transaction. A body that yields anything else that is a promise
// (Redis, a timer, a hash) would commit half its work on bun:sqlite, so it is refused and rolled back.

/** What a repository call returns: the value itself on bun:sqlite, a promise of it on libSQL. */
export type Step<T> = T | Promise<T>;

export type TxBody<Tx, T> = (tx: Tx) => Generator<unknown, T, unknown>;

/** Runs one database call inside a transaction body: `const row = yield* q(usersRepo.findById(tx, id))`. */
export function* q<T>(step: Step<T>): Generator<Step<T>, T, unknown> {
  return (yield step) as T;
}

export class AsyncInTransaction extends Error {
  constructor() {
    super("a transaction body waited on something that is not this database; the transaction was rolled back");
    this.name = "AsyncInTransaction";
  }
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as { then?: unknown }).then === "function";

/** Drives a body whose every step is already a value (bun:sqlite). */
export function driveSync<T>(gen: Generator<unknown, T, unknown>): T {
  let r = gen.next();
  while (!r.done) {
    if (isThenable(r.value)) {
      // Settle a rejected promise quietly; the caller gets AsyncInTransaction.
      Promise.resolve(r.value).catch(() => undefined);
      throw new AsyncInTransaction();
    }
    r = gen.next(r.value);
  }
  return r.value;
}

/**
 * Drives a body of reads outside a transaction on either driver: synchronously while its steps are values
 * (bun:sqlite), awaiting each step from the first promise on (libSQL).
 */
export function drive<T>(gen: Generator<unknown, T, unknown>): Step<T> {
  let r = gen.next();
  while (!r.done) {
    if (isThenable(r.value)) return awaitSteps(gen, r);
    r = gen.next(r.value);
  }
  return r.value;
}

/** Drives a body whose steps are promises (libSQL). */
export function driveAsync<T>(gen: Generator<unknown, T, unknown>): Promise<T> {
  return awaitSteps(gen, gen.next());
}

/** Drives `gen` on from its step `r`, awaiting each step. */
async function awaitSteps<T>(gen: Generator<unknown, T, unknown>, r: IteratorResult<unknown, T>): Promise<T> {
  while (!r.done) {
    let value: unknown;
    try {
      value = await r.value;
    } catch (err) {
      r = gen.throw(err);
      continue;
    }
    r = gen.next(value);
  }
  return r.value;
}
