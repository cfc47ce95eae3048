// A local HTTP dependency that answers, fails, hangs or answers slowly on command: the failing dependency of
// the circuit-breaker tests (a mail API, a primary's /internal routes).
import type { Server } from "bun";

export type FaultMode = { kind: "ok" } | { kind: "fail"; status: number } | { kind: "hang" } | { kind: "slow"; ms: number };

export interface FaultyServer {
  url: string;
  /** Requests that reached the server (a breaker that fails fast adds none). */
  readonly hits: number;
  /** Bodies of the requests answered with success, in order. */
  readonly answered: unknown[];
  set(mode: FaultMode): void;
  close(): Promise<void>;
}

export function startFaultyServer(okBody: () => unknown = () => ({ ok: true })): FaultyServer {
  let mode: FaultMode = { kind: "ok" };
  let hits = 0;
  const answered: unknown[] = [];
  const hanging = new Set<() => void>();
  const server: Server<undefined> = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(request) {
      hits++;
      const text = await request.text();
      const m = mode;
      if (m.kind === "fail") return Response.json({ error: "induced failure" }, { status: m.status });
      if (m.kind === "hang") await new Promise<void>((resolve) => hanging.add(resolve));
      if (m.kind === "slow") await Bun.sleep(m.ms);
      answered.push(text ? JSON.parse(text) : null);
      return Response.json(okBody());
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    get hits() {
      return hits;
    },
    answered,
    set(next) {
      mode = next;
      if (next.kind !== "hang") for (const release of hanging) release();
      if (next.kind !== "hang") hanging.clear();
    },
    async close() {
      for (const release of hanging) release();
      await server.stop(true);
    },
  };
}
