// Circuit breakers for the outbound dependencies (mail API, the primary's /internal routes, the Fly Machines
// API), one per dependency, built on opossum: it lets a single probe through once the reset time has passed
// and rejects every other call at once meanwhile, so a caller never waits on a dependency known to be down.
// Why opossum and not cockatiel or an own one: docs/operations.md.
import CircuitBreaker from "opossum";
import type { Logger } from "../observability/logger.ts";

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerSettings {
  /** Calls the window must hold before it can open (it opens when more than half of them failed). */
  threshold: number;
  /** How long the circuit stays open before one probe is let through. */
  resetMs: number;
  /** The rolling window the failures are counted over. */
  windowMs: number;
}

/** Thrown instead of calling a dependency whose circuit is open: the caller answers 503, a job retries later. */
export class CircuitOpenError extends Error {
  readonly status = 503;
  constructor(
    readonly dependency: string,
    /** When a probe will next be let through. */
    readonly retryAfterMs: number,
    /** The dependency's own error, when this call did reach it (and its failure opened the circuit). */
    cause?: unknown,
  ) {
    const what = cause ? `failed and the circuit is now open (${(cause as Error)?.message ?? String(cause)})` : "is failing; not called";
    super(`circuit open: ${dependency} ${what}; next probe in ${Math.ceil(retryAfterMs / 1000)} s`, { cause });
    this.name = "CircuitOpenError";
  }
}

export interface BreakerView {
  dependency: string;
  state: BreakerState;
  /** When the state last changed (ISO 8601), null if never. */
  since: string | null;
  failures: number;
  rejected: number;
  opened_total: number;
  /** False for a breaker kept outside the registry and reported by it (the Redis L2's own, cache/l2.ts). */
  managed: boolean;
}

type Action = () => Promise<unknown>;

export class Breaker {
  private readonly cb: CircuitBreaker<[Action], unknown>;
  private openedAt = 0;
  private changedAt: number | null = null;
  failures = 0;
  rejected = 0;
  openedTotal = 0;

  constructor(
    readonly dependency: string,
    readonly settings: BreakerSettings,
    logger: Logger,
    /** Errors that say nothing about the dependency's health (a 4xx about the request): not counted. */
    private readonly ignore: (err: unknown) => boolean = () => false,
  ) {
    this.cb = new CircuitBreaker<[Action], unknown>((fn: Action) => fn(), {
      name: dependency,
      // The call carries its own timeout (an AbortSignal that also cancels the request); opossum's would not.
      timeout: false,
      resetTimeout: settings.resetMs,
      rollingCountTimeout: settings.windowMs,
      rollingCountBuckets: 10,
      // Opens once the window holds at least `threshold` calls and more than half of them failed.
      volumeThreshold: settings.threshold,
      errorThresholdPercentage: 50,
      errorFilter: (err: unknown) => this.ignore(err),
      enableSnapshots: false,
    } as CircuitBreaker.Options<[Action]>);
    const log = logger.child({ component: "breaker", dependency });
    const changed = (state: BreakerState) => {
      this.changedAt = Date.now();
      if (state === "open") {
        this.openedAt = this.changedAt;
        this.openedTotal++;
        log.warn("circuit opened: calls fail fast until a probe succeeds", { reset_ms: settings.resetMs });
      } else if (state === "closed") log.info("circuit closed: the dependency answers again");
      else log.info("circuit half-open: one probe let through");
    };
    this.cb.on("open", () => changed("open"));
    this.cb.on("halfOpen", () => changed("half_open"));
    this.cb.on("close", () => changed("closed"));
    this.cb.on("failure", () => this.failures++);
    this.cb.on("reject", () => this.rejected++);
  }

  get state(): BreakerState {
    return this.cb.opened ? "open" : this.cb.halfOpen ? "half_open" : "closed";
  }

  /**
   * Runs `fn` under the breaker; throws CircuitOpenError without calling it while the circuit is open. A counted
   * failure that leaves the circuit open (it opened it, or a probe failed) is a CircuitOpenError too, with the
   * dependency's error as its cause: the caller treats "down" alike however it learnt it (a job is deferred
   * rather than charged a retry for the probe).
   */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return (await this.cb.fire(fn)) as T;
    } catch (err) {
      if ((err as { code?: string })?.code === "EOPENBREAKER") throw new CircuitOpenError(this.dependency, this.retryAfterMs());
      if (!this.ignore(err) && this.state === "open") throw new CircuitOpenError(this.dependency, this.retryAfterMs(), err);
      throw err;
    }
  }

  private retryAfterMs(): number {
    if (this.state === "half_open") return Math.min(1_000, this.settings.resetMs);
    return Math.max(0, this.openedAt + this.settings.resetMs - Date.now());
  }

  view(): BreakerView {
    return {
      dependency: this.dependency,
      state: this.state,
      since: this.changedAt === null ? null : new Date(this.changedAt).toISOString(),
      failures: this.failures,
      rejected: this.rejected,
      opened_total: this.openedTotal,
      managed: true,
    };
  }

  shutdown(): void {
    this.cb.shutdown();
  }
}

/** The breakers of one instance, by dependency name; also reports breakers kept elsewhere (read-only). */
export class Breakers {
  private readonly byName = new Map<string, Breaker>();
  private readonly observed = new Map<string, () => Omit<BreakerView, "dependency" | "managed"> | null>();

  constructor(private readonly logger: Logger) {}

  /** The breaker of `dependency`, created with `settings` on first use. */
  get(dependency: string, settings: BreakerSettings, ignore?: (err: unknown) => boolean): Breaker {
    let b = this.byName.get(dependency);
    if (!b) {
      b = new Breaker(dependency, settings, this.logger, ignore);
      this.byName.set(dependency, b);
    }
    return b;
  }

  /** Reports a breaker this registry does not run, with its own state and counts (null: not in use here). */
  observe(dependency: string, view: () => Omit<BreakerView, "dependency" | "managed"> | null): void {
    this.observed.set(dependency, view);
  }

  list(): BreakerView[] {
    const out = [...this.byName.values()].map((b) => b.view());
    for (const [dependency, read] of this.observed) {
      const v = read();
      if (v) out.push({ dependency, ...v, managed: false });
    }
    return out.sort((a, b) => a.dependency.localeCompare(b.dependency));
  }

  close(): void {
    for (const b of this.byName.values()) b.shutdown();
  }
}

/** An HTTP status that speaks about the request, not about the dependency's health (4xx but 408 and 429). */
export function isClientError(err: unknown): boolean {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/** "<calls>/<seconds>" (BREAKER_* variables), over a ten-second window: a recent majority of failures opens it. */
export function breakerSettings(spec: string): BreakerSettings {
  const [calls, seconds] = spec.split("/").map(Number) as [number, number];
  return { threshold: calls, resetMs: seconds * 1000, windowMs: 10_000 };
}

/** The dependencies this service guards, as named in `circuit_state{dependency}`. */
export const DEPENDENCY = { mail: "mail_api", primary: "primary", machines: "fly_machines", redisL2: "redis_l2" } as const;
