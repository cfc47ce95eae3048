// Records the outcome of each run: in the ledger first (durable), then acknowledged in Redis in batches by one
// script, which records nothing for a delivery that another worker has taken over meanwhile.
import type { Job } from "../port.ts";
import { errorText } from "../failure.ts";
import { FINISH } from "../redis-scripts.ts";
import { GROUP, type Held, type QueueContext } from "./context.ts";

const FINISH_CHUNK = 500;

export type Outcome = { kind: "ok" } | { kind: "retry"; retry: number; delay: number; error: string } | { kind: "fail"; retry: number; error: string };

interface FinishItem {
  held: Held;
  outcome: Outcome;
  resolve: (recorded: boolean) => void;
  reject: (err: unknown) => void;
}

function finalJob(held: Held, outcome: Outcome): Job[] {
  if (outcome.kind === "retry") return [];
  const ok = outcome.kind === "ok";
  return [{
    id: held.jid,
    type: held.type,
    status: ok ? "completed" : "failed",
    created_at: new Date(held.startedAt).toISOString(),
    started_at: new Date(held.startedAt).toISOString(),
    completed_at: new Date().toISOString(),
    error_message: ok ? null : outcome.error,
    retry_count: ok ? held.retry : outcome.retry,
    max_retries: held.maxRetries,
  }];
}

export class Finisher {
  private queue: FinishItem[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly ctx: QueueContext,
    /** Told when a retry was recorded, with its delay: the promoter must look by then. */
    private readonly onRetry: (delayMs: number) => void,
  ) {}

  /** Records an outcome; while Redis is unreachable, keeps trying for up to a visibility timeout. */
  async finish(held: Held, outcome: Outcome): Promise<void> {
    const deadline = Date.now() + this.ctx.o.visibilityTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const recorded = await this.push(held, outcome);
        if (!recorded) this.ctx.log.debug("job outcome not recorded: another worker holds it now", { job_id: held.jid });
        else if (outcome.kind === "retry") this.onRetry(outcome.delay);
        return;
      } catch (err) {
        if (Date.now() > deadline || held.ctrl.signal.aborted) {
          this.ctx.log.warn("could not record a job's outcome; it will be delivered again", { job_id: held.jid, error: errorText(err) });
          return;
        }
        await Bun.sleep(Math.min(1_000, 25 * 2 ** attempt));
      }
    }
  }

  /** Waits (bounded) for the batch being written at shutdown. */
  async settle(): Promise<void> {
    if (this.flushing) await Promise.race([this.flushing, Bun.sleep(2_000)]);
  }

  /** Outcomes are written in batches: those that finish while a batch is in flight go in the next one. */
  private push(held: Held, outcome: Outcome): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ held, outcome, resolve, reject });
      if (!this.flushing) this.flushing = this.flush();
    });
  }

  private async flush(): Promise<void> {
    const { redis, base, o } = this.ctx;
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, FINISH_CHUNK);
      const args: (string | number)[] = [base, GROUP, o.consumerName, Date.now(), o.retentionCompletedMs, o.retentionFailedMs];
      for (const { held, outcome } of batch) {
        args.push(
          held.stream,
          held.eid,
          held.jid,
          held.dlv,
          outcome.kind,
          outcome.kind === "ok" ? 0 : outcome.retry,
          outcome.kind === "retry" ? outcome.delay : 0,
          outcome.kind === "ok" ? "" : outcome.error,
        );
      }
      try {
        // Durable first: once the ledger has it, nothing Redis forgets can make the job run again.
        if (o.ledger) await o.ledger.recordFinished(batch.flatMap(({ held, outcome }) => finalJob(held, outcome)));
        const res = (await FINISH.run(redis, [], args)) as number[];
        batch.forEach((item, i) => item.resolve(res[i] === 1));
      } catch (err) {
        for (const item of batch) item.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
