// Writes take turns so reads do not wait behind them. One process serves every request on one event loop, and
// a write costs that loop several times what a read does: with as many writes in progress as reads, each read
// waited for all of them. The lane lets `concurrency` writes into the app at once; the others wait (asleep, costing the
// loop nothing) for a turn, so a read waits for at most that many writes. A write that has waited `maxWaitMs`
// goes in anyway, so the lane only orders writes and never answers for them: a held database lock or a slow
// write still ends in the app's own answer (503 after DB_WRITE_WAIT_MS), at most `maxWaitMs` later.
// A write gives its turn back when its transaction commits (inTurn): what is left of it, the cache
// invalidation's Redis call and the answer, mostly waits on the network, which costs the loop nothing.
import { holdingTurn } from "../db/write-turn.ts";
import { pathnameOf } from "../observability/metrics.ts";

export interface WriteLaneStats {
  /** Writes holding a turn: in the app and not yet committed. */
  inFlight: number;
  /** Writes waiting for a turn. */
  waiting: number;
  /** Writes that went in after waiting maxWaitMs, beyond the bound. */
  overflowed: number;
}

export interface WriteLane {
  /** Whether a request goes through the lane: a write, and not one whose work runs off the loop (password hashing). */
  applies(method: string, url: string): boolean;
  /** Waits for a turn; run the write with inTurn() and the function it returns. */
  enter(): Promise<() => void> | (() => void);
  stats(): WriteLaneStats;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** `concurrency` 0: no lane (every write goes in at once). `offLoop`: "METHOD path"s the lane lets through. */
export function writeLane(concurrency: number, maxWaitMs: number, offLoop: ReadonlySet<string> = new Set()): WriteLane {
  let inFlight = 0;
  let overflowed = 0;
  const waiting: Waiter[] = [];
  // A write that went in past the bound (maxWaitMs) does not let the next one in: only below the bound.
  const leave = () => {
    if (inFlight > concurrency || waiting.length === 0) {
      inFlight--;
      return;
    }
    // The turn passes to the next write still counted, so no write arriving meanwhile takes it, and on a later
    // turn of the event loop: handed over at once (a promise's reaction), the next write would run before the
    // loop reads any other socket, the one after it too, and a read would wait for every queued write.
    waiting.shift()!.handOver();
  };
  return {
    applies: (method, url) => concurrency > 0 && WRITES.has(method) && !offLoop.has(method + " " + pathnameOf(url)),
    enter() {
      if (inFlight < concurrency) {
        inFlight++;
        return once(leave);
      }
      return new Promise((resolve) => {
        const waiter: Waiter = {
          timer: setTimeout(() => {
            waiting.splice(waiting.indexOf(waiter), 1);
            overflowed++;
            inFlight++;
            resolve(once(leave));
          }, maxWaitMs),
          handOver() {
            clearTimeout(waiter.timer);
            setImmediate(() => resolve(once(leave)));
          },
        };
        waiting.push(waiter);
      });
    },
    stats: () => ({ inFlight, waiting: waiting.length, overflowed }),
  };
}

interface Waiter {
  timer: ReturnType<typeof setTimeout>;
  /** Takes the turn a leaving write hands over (already counted in inFlight). */
  handOver(): void;
}

/** Runs a write in the turn `leave` gives back: at the write's commit (db/write-turn.ts), else once it is answered. */
export function inTurn<T>(leave: () => void, write: () => Promise<T>): Promise<T> {
  return holdingTurn(leave, write).finally(leave);
}

function once(f: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    f();
  };
}

/** The lane's gauges for /metrics (MetricsSource.extra). */
export function writeLaneMetrics(lane: WriteLane) {
  return (out: string[]): void => {
    const s = lane.stats();
    out.push(
      "# HELP http_writes_in_flight Writes (POST, PUT, PATCH, DELETE) holding a turn (in the app, not yet committed); at most WRITE_CONCURRENCY unless one overflowed.",
      "# TYPE http_writes_in_flight gauge",
      `http_writes_in_flight ${s.inFlight}`,
      "# HELP http_writes_waiting Writes waiting for a turn in the write lane.",
      "# TYPE http_writes_waiting gauge",
      `http_writes_waiting ${s.waiting}`,
      "# HELP http_writes_overflowed_total Writes that went in after waiting WRITE_LANE_WAIT_MS, beyond WRITE_CONCURRENCY.",
      "# TYPE http_writes_overflowed_total counter",
      `http_writes_overflowed_total ${s.overflowed}`,
    );
  };
}
