// A request's turn in the write lane (http/write-lane.ts), reachable from the database without being passed
// down: the lane runs the request inside holdingTurn(), and a write transaction that commits gives the turn
// back, because what remains of the request (the cache invalidation's Redis call, the answer) mostly waits on
// I/O, while the lane exists to bound the writes' work on the event loop.
//
// Only the request's own write may give the turn back: a write the platform makes for its own bookkeeping while
// the request runs (the Idempotency-Key's claim, before the route's write even starts) runs in outsideTurn(),
// else its commit would let the request's real work run outside the lane. A task a request starts and leaves
// running (it carries the request's store) cannot take a turn from anyone: the turn it would give back is the
// request's own, whose giveBack is called once at most (write-lane.ts once()), so a commit after the request's
// own commit or answer does nothing.
import { AsyncLocalStorage } from "node:async_hooks";

const turns = new AsyncLocalStorage<() => void>();

/** Runs `fn` with `giveBack` as the turn a commit inside it gives back (giveBack must tolerate a second call). */
export function holdingTurn<T>(giveBack: () => void, fn: () => T): T {
  return turns.run(giveBack, fn);
}

/**
 * Runs `fn` as no request's write: a commit inside it gives no turn back (a request's bookkeeping write, not the
 * write its turn is for). A promise `fn` makes keeps that context: the libSQL path's commit comes later.
 */
export function outsideTurn<T>(fn: () => T): T {
  return turns.exit(fn);
}

/** A write transaction committed: the request it runs for (if it holds a turn) gives the turn back. */
export function committed(): void {
  turns.getStore()?.();
}
