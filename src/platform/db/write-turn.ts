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

interface Turn {
  giveBack: () => void;
  /** What the request's write must pass just before its transaction begins (beforeWrite); dropped at its commit. */
  check?: () => void | Promise<unknown>;
}

const turns = new AsyncLocalStorage<Turn>();

/** Runs `fn` with `giveBack` as the turn a commit inside it gives back (giveBack must tolerate a second call). */
export function holdingTurn<T>(giveBack: () => void, fn: () => T): T {
  return turns.run({ giveBack }, fn);
}

/**
 * Runs `fn` as no request's write: a commit inside it gives no turn back (a request's bookkeeping write, not the
 * write its turn is for). A promise `fn` makes keeps that context: the libSQL path's commit comes later.
 */
export function outsideTurn<T>(fn: () => T): T {
  return turns.exit(fn);
}

/**
 * Sets what the write of the request holding a turn must pass just before its transaction begins (the caller's
 * rights, decided again: auth.ts), so that nothing between a check made earlier and the write (a password's
 * hash, a wait for the database) lets a write commit that the check would now refuse. Throwing (or rejecting)
 * refuses the write; it runs synchronously when it can, keeping a write that needs no wait free of awaits.
 */
export function beforeWrite(check: () => void | Promise<unknown>): void {
  const turn = turns.getStore();
  if (turn !== undefined) turn.check = check;
}

/** The check beforeWrite set for the request this write runs for, if any (the database calls it). */
export function writeCheck(): void | Promise<unknown> {
  return turns.getStore()?.check?.();
}

/** A write transaction committed: the request it runs for (if it holds a turn) gives the turn back. */
export function committed(): void {
  const turn = turns.getStore();
  if (turn === undefined) return;
  // Checked once, for the write the turn is for: what the request writes after it (or a task it left running)
  // is not its caller's to refuse any more.
  turn.check = undefined;
  turn.giveBack();
}
