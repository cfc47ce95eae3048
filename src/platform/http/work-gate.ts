// A bound on expensive work at once (password hashing): `concurrency` run, `queue` more wait their turn, and
// anything beyond is refused at once with 503 and Retry-After, rather than waiting behind a long queue.
import { AppError } from "./errors.ts";

export class WorkGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  refused = 0;

  constructor(
    private readonly concurrency: number,
    private readonly queue: number,
    private readonly what = "Too many password checks at once",
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queue) {
        this.refused++;
        throw new AppError(503, `${this.what}; retry in a second`, undefined, { "retry-after": "1" });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get busy(): number {
    return this.running + this.waiting.length;
  }
}
