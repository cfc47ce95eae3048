// A request's turn in the write lane (http/write-lane.ts), reachable from the database without being passed
// down: the lane runs the request inside holdingTurn(), and a write transaction that commits gives the turn
// back, because what remains of the request (the cache invalidation's Redis call, the answer) mostly waits on
// I/O, while the lane exists to bound the writes' work on the event loop.
import { AsyncLocalStorage } from "node:async_hooks";

const turns = new AsyncLocalStorage<() => void>();

/** Runs `fn` with `giveBack` as the turn a commit inside it gives back (giveBack must tolerate a second call). */
export function holdingTurn<T>(giveBack: () => void, fn: () => T): T {
  return turns.run(giveBack, fn);
}

/** A write transaction committed: the request it runs for (if it holds a turn) gives the turn back. */
export function committed(): void {
  turns.getStore()?.();
}
