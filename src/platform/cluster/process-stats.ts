// CPU and memory of this process, as the heartbeat and /metrics report them.
import { availableParallelism, totalmem } from "node:os";

/**
 * CPU use between two calls of `sample()`, from `process.cpuUsage()` deltas (user + system) over the wall
 * time between them, as a percentage of the machine's capacity (all cores = 100).
 */
export class CpuSampler {
  private lastUsage = process.cpuUsage();
  private lastAt = performance.now();
  private readonly cores = Math.max(1, availableParallelism());

  sample(): number {
    const usage = process.cpuUsage();
    const at = performance.now();
    const cpuMicros = usage.user - this.lastUsage.user + (usage.system - this.lastUsage.system);
    const wallMicros = (at - this.lastAt) * 1000;
    this.lastUsage = usage;
    this.lastAt = at;
    if (wallMicros <= 0) return 0;
    return round2(Math.min(100, Math.max(0, (cpuMicros / wallMicros / this.cores) * 100)));
  }
}

/** Resident set size against the machine's total memory, in percent. */
export function memoryPercent(): number {
  return round2((process.memoryUsage.rss() / totalmem()) * 100);
}

export const round2 = (n: number) => Math.round(n * 100) / 100;
