// After the bus was silent (Redis hung), another instance may still owe Redis the tag bumps that failed during
// the hang, and an L2 entry written before its write would look valid until they land. For a while after the
// heartbeats come back, L1 misses read the database instead of the L2 (and fill no L2: no tokens were read).
import type { L2Policy } from "./l2-policy.ts";

export interface SettlingPolicy extends L2Policy {
  /** Skip the L2 for the next `ms`. */
  quietFor(ms: number): void;
}

export function settlingPolicy(inner: L2Policy): SettlingPolicy {
  let quietUntil = 0;
  return {
    ...inner,
    useL2: () => performance.now() >= quietUntil && inner.useL2(),
    observeL2: (ms, ok, hit) => inner.observeL2(ms, ok, hit),
    observeLoad: (ms) => inner.observeLoad(ms),
    start: () => inner.start(),
    stop: () => inner.stop(),
    stats: () => inner.stats(),
    quietFor(ms) {
      quietUntil = Math.max(quietUntil, performance.now() + ms);
    },
  };
}
