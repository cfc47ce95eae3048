// A local stand-in for the Fly Machines API, the part the scaler uses, shaped after Fly's published description
// (docs.machines.dev, swagger "Machines API" 1.0): GET /v1/apps/{app}/machines -> Machine[]; POST .../machines
// {region, config} -> Machine; POST .../machines/{id}/start and /stop -> 200; errors as ErrorResponse {error}
// with 400/401/404, plus the 429 (Retry-After) and 5xx a real API gives. What differs: states change at once
// (no "starting"/"stopping" in between unless a hook takes time), no leases, no nonce, no wait endpoint.
// Hooks let a test bind machines to real local instances (start spawns one, stop stops it).
import type { Server } from "bun";

export interface StandinMachine {
  id: string;
  name: string;
  state: string;
  region: string;
  config: Record<string, unknown>;
  created_at: string;
}

export type Fault = { kind: "none" } | { kind: "status"; status: number } | { kind: "rate-limit"; retryAfter: number } | { kind: "slow"; ms: number } | { kind: "hang" };

export interface MachinesStandin {
  url: string;
  app: string;
  token: string;
  machines: Map<string, StandinMachine>;
  /** Requests seen, as "METHOD /path". */
  calls: string[];
  fault(f: Fault): void;
  close(): Promise<void>;
}

export interface StandinHooks {
  onStart?(m: StandinMachine): Promise<void> | void;
  onStop?(m: StandinMachine): Promise<void> | void;
  onCreate?(m: StandinMachine): Promise<void> | void;
}

const err = (status: number, error: string, headers: Record<string, string> = {}) => Response.json({ error, status: String(status) }, { status, headers });

export function startMachinesStandin(app: string, initial: Omit<StandinMachine, "created_at" | "name" | "config">[], hooks: StandinHooks = {}): MachinesStandin {
  const token = `fly-test-${crypto.randomUUID()}`;
  const machines = new Map<string, StandinMachine>();
  for (const m of initial) machines.set(m.id, { ...m, name: `m-${m.id}`, config: { image: "registry.fly.io/neodyme-edge:test", env: {} }, created_at: new Date().toISOString() });
  const calls: string[] = [];
  let fault: Fault = { kind: "none" };
  let seq = 0;
  const hanging = new Set<() => void>();
  const base = `/v1/apps/${app}/machines`;

  const server: Server<undefined> = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url);
      calls.push(`${request.method} ${url.pathname}`);
      const f = fault;
      if (f.kind === "hang") await new Promise<void>((resolve) => hanging.add(resolve));
      if (f.kind === "slow") await Bun.sleep(f.ms);
      if (f.kind === "status") return err(f.status, "induced failure");
      if (f.kind === "rate-limit") return err(429, "rate limit exceeded", { "retry-after": String(f.retryAfter) });
      if (request.headers.get("authorization") !== `Bearer ${token}`) return err(401, "unauthorized");
      if (!url.pathname.startsWith(`/v1/apps/`)) return err(404, "not found");
      if (!url.pathname.startsWith(base)) return err(404, "app not found");
      const rest = url.pathname.slice(base.length);
      if (rest === "" && request.method === "GET") return Response.json([...machines.values()]);
      if (rest === "" && request.method === "POST") {
        const body = (await request.json().catch(() => null)) as { region?: unknown; config?: unknown } | null;
        if (!body || typeof body.config !== "object" || body.config === null) return err(400, "config is required");
        const id = `new${++seq}${crypto.randomUUID().slice(0, 6)}`;
        const m: StandinMachine = { id, name: `m-${id}`, state: "started", region: String(body.region ?? "local"), config: body.config as Record<string, unknown>, created_at: new Date().toISOString() };
        machines.set(id, m);
        await hooks.onCreate?.(m);
        return Response.json(m);
      }
      const match = /^\/([^/]+)\/(start|stop)$/.exec(rest);
      if (match && request.method === "POST") {
        const m = machines.get(decodeURIComponent(match[1]!));
        if (!m) return err(404, "machine not found");
        if (match[2] === "start") {
          if (m.state !== "started") {
            m.state = "started";
            await hooks.onStart?.(m);
          }
        } else if (m.state !== "stopped") {
          m.state = "stopped";
          await hooks.onStop?.(m);
        }
        return Response.json({ ok: true });
      }
      return err(404, "not found");
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    app,
    token,
    machines,
    calls,
    fault(f) {
      fault = f;
      if (f.kind !== "hang") {
        for (const release of hanging) release();
        hanging.clear();
      }
    },
    async close() {
      for (const release of hanging) release();
      await server.stop(true);
    },
  };
}
