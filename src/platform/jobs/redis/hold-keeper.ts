// Keeps this worker's hold on every delivery it is running (extended well within the visibility timeout) and
// aborts the handlers of those it lost to another worker's takeover.
import { EXTEND } from "../redis-scripts.ts";
import { GROUP, type Held, type QueueContext } from "./context.ts";

const heldKey = (h: { eid: string; dlv: string }) => `${h.eid}#${h.dlv}`;

export class HoldKeeper {
  private readonly held = new Map<string, Held>();
  private extending = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly ctx: QueueContext) {}

  get size(): number {
    return this.held.size;
  }

  add(h: Held): void {
    this.held.set(heldKey(h), h);
  }

  delete(h: Held): void {
    this.held.delete(heldKey(h));
  }

  list(): Held[] {
    return [...this.held.values()];
  }

  start(): void {
    this.timer ??= setInterval(() => void this.extend(), Math.max(20, Math.floor(this.ctx.o.visibilityTimeoutMs / 3)));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Extends the hold on every delivery this worker has; aborts the handlers of those it lost. */
  private async extend(): Promise<void> {
    if (this.extending || this.held.size === 0) return;
    this.extending = true;
    const { redis, base, o, log } = this.ctx;
    try {
      const list = this.list();
      const lost = (await EXTEND.run(redis, [], [
        base, GROUP, o.consumerName, ...list.flatMap((h) => [h.stream, h.eid, h.jid, h.dlv]),
      ])) as number[];
      for (const pos of lost) {
        const h = list[Number(pos) - 1];
        if (h && !h.ctrl.signal.aborted) {
          log.warn("lost the hold on a running job; aborting it", { job_id: h.jid });
          h.ctrl.abort(new Error("this worker lost its hold on the job"));
        }
      }
    } catch (err) {
      this.ctx.logError("could not extend job holds", err);
    } finally {
      this.extending = false;
    }
  }
}
