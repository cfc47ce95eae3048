// A bounded load generator for fault scenarios (tests and `bun run chaos`): `workers` loops on keep-alive
// connections for `durationMs`, each request one of the caller's choosing; every answer and every connection
// error is counted, with latencies by phase.
export interface LoadResult {
  requests: number;
  status5xx: number;
  connectionErrors: number;
  errors: string[];
  /** Latencies (ms) of answered requests, by the phase that was current when each was sent. */
  latencies: Record<string, number[]>;
}

export interface LoadOptions {
  workers: number;
  durationMs: number;
  /** Builds the i-th request of a worker. */
  request: (worker: number, i: number) => Request;
  /** Called with each answer (status and body), e.g. to check what a read returned. */
  check?: (res: Response, req: Request, sentAt: number) => Promise<void> | void;
  /** The current phase's name ("before", "during", "after"); latencies are grouped by it. */
  phase?: () => string;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const r: LoadResult = { requests: 0, status5xx: 0, connectionErrors: 0, errors: [], latencies: {} };
  const until = performance.now() + o.durationMs;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < until; i++) {
      const req = o.request(w, i);
      const phase = o.phase?.() ?? "all";
      const sent = performance.now();
      r.requests++;
      try {
        const res = await fetch(req);
        (r.latencies[phase] ??= []).push(performance.now() - sent);
        if (res.status >= 500) r.status5xx++;
        if (o.check) await o.check(res, req, sent);
        else await res.arrayBuffer();
      } catch (err) {
        r.connectionErrors++;
        if (r.errors.length < 10) r.errors.push(`${req.method} ${new URL(req.url).pathname}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));
  return r;
}

export function p99(values: readonly number[] | undefined): number | null {
  if (!values || values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]! * 10) / 10;
}

/** Pids of processes whose environment has INSTANCE_ID=`id` (Linux /proc): a cluster runner's child. */
export async function pidsOfInstance(id: string): Promise<number[]> {
  const { readdir, readFile } = await import("node:fs/promises");
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = await readFile(`/proc/${name}/environ`, "latin1");
      if (env.split("\0").includes(`INSTANCE_ID=${id}`)) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
