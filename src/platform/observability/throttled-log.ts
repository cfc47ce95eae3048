// Warnings that an outage repeats on every request (a failed publish per write) become one line per reason per
// interval: the first at once, then at most one per interval carrying how many were suppressed since.
import type { Logger } from "./logger.ts";

export type ThrottledWarn = (reason: string, fields?: Record<string, unknown>) => void;

export function throttledWarn(logger: Logger, intervalMs = 10_000, now: () => number = Date.now): ThrottledWarn {
  const seen = new Map<string, { at: number; suppressed: number }>();
  return (reason, fields = {}) => {
    const t = now();
    const s = seen.get(reason);
    if (s !== undefined && t - s.at < intervalMs) {
      s.suppressed++;
      return;
    }
    logger.warn(reason, s !== undefined && s.suppressed > 0 ? { ...fields, repeated: s.suppressed, interval_ms: intervalMs } : fields);
    seen.set(reason, { at: t, suppressed: 0 });
  };
}
