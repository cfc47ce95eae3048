// The few Fly Machines API calls the scaler makes (https://docs.machines.dev): list the app's machines, start,
// stop, and create one from an existing machine's config. Every call has a timeout and goes through the
// Machines API's circuit breaker; errors carry the status (429 with its Retry-After).
import type { Breaker } from "../resilience/breakers.ts";

export interface FlyMachine {
  id: string;
  name?: string;
  state: string;
  region: string;
  config?: Record<string, unknown>;
  private_ip?: string;
}

export class MachinesApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "MachinesApiError";
  }
}

export interface MachinesClientOptions {
  baseUrl: string;
  token: string;
  app: string;
  timeoutMs: number;
  breaker?: Breaker;
}

export class MachinesClient {
  private readonly base: string;
  constructor(private readonly o: MachinesClientOptions) {
    this.base = `${o.baseUrl.replace(/\/+$/, "")}/v1/apps/${encodeURIComponent(o.app)}/machines`;
  }

  list(): Promise<FlyMachine[]> {
    return this.call<FlyMachine[]>("GET", "");
  }

  async start(id: string): Promise<void> {
    await this.call("POST", `/${encodeURIComponent(id)}/start`);
  }

  async stop(id: string): Promise<void> {
    await this.call("POST", `/${encodeURIComponent(id)}/stop`);
  }

  /** A new machine in `region` with `config` (taken from an existing machine of the app). */
  create(region: string, config: Record<string, unknown>): Promise<FlyMachine> {
    return this.call<FlyMachine>("POST", "", { region, config });
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const run = () => this.request<T>(method, path, body);
    return this.o.breaker ? this.o.breaker.call(run) : run();
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = this.base + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.o.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      throw new MachinesApiError(`${method} ${path || "/"}: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      let detail = text.slice(0, 200);
      try {
        detail = (JSON.parse(text) as { error?: string }).error ?? detail;
      } catch {
        // not JSON: keep the text
      }
      const retryAfter = Number(res.headers.get("retry-after"));
      throw new MachinesApiError(`${method} ${path || "/"}: HTTP ${res.status} ${detail}`, res.status, Number.isFinite(retryAfter) ? retryAfter : undefined);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
