// Moves due retries and delayed starts from the delayed set back to their streams: one timer, set for the
// soonest due job it knows of and at least every second (another instance may have added one).
import { PROMOTE } from "../redis-scripts.ts";
import type { QueueContext } from "./context.ts";

const PROMOTE_MAX_WAIT_MS = 1_000;

export class Promoter {
  private started = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private at = Infinity;
  private promoting: Promise<void> | undefined;

  constructor(private readonly ctx: QueueContext) {}

  start(): void {
    this.started = true;
    this.schedule(0);
  }

  /** A job becomes due in `inMs`: run sooner than planned if need be. */
  wake(inMs: number): void {
    if (!this.started || this.stopped) return;
    if (Date.now() + inMs < this.at) this.schedule(inMs);
  }

  /** Schedules nothing more; a run in flight may still finish (see settle). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Waits (bounded) for a run in flight, then cancels what it scheduled. */
  async settle(): Promise<void> {
    await Promise.race([this.promoting, Bun.sleep(1_000)]);
    clearTimeout(this.timer);
  }

  private schedule(inMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.at = Date.now() + inMs;
    this.timer = setTimeout(() => {
      this.at = Infinity;
      this.promoting = this.promote();
    }, inMs);
  }

  private async promote(): Promise<void> {
    let next = PROMOTE_MAX_WAIT_MS;
    try {
      const r = Number(await PROMOTE.run(this.ctx.redis, [], [this.ctx.base, 500]));
      next = r < 0 ? PROMOTE_MAX_WAIT_MS : Math.min(r, PROMOTE_MAX_WAIT_MS);
    } catch (err) {
      this.ctx.logError("moving due retries failed", err);
    }
    if (this.at === Infinity) this.schedule(next);
  }
}
