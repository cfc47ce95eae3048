// The two timed scenarios: cross-region coherence (write in the primary region, first fresh read elsewhere) and
// losing the primary (SIGKILL plus a partition of its region, then its return).
import type { Lab } from "./topology.ts";
import { request, type Caller, type Sample } from "./workload.ts";

/**
 * Median over `trials` of: the time from sending a preferences write in the primary region to the end of the
 * first read in `region` that shows it (that region's L1 primed with the old value first).
 */
export async function coherence(lab: Lab, region: string, writer: Caller, reader: Caller, trials = 5): Promise<number> {
  const primaryEdge = lab.edgeUrl(lab.primaryRegion);
  const edge = lab.edgeUrl(region);
  let lastCache: string | null = null;
  const read = async () => {
    const res = await fetch(`${edge}/api/v1/users/${writer.id}`, { headers: { authorization: `Bearer ${reader.token}` } });
    lastCache = res.headers.get("x-cache");
    return res.status === 200 ? (((await res.json()) as { preferences: Record<string, unknown> }).preferences.coherence as unknown) : undefined;
  };
  const delays: number[] = [];
  // Every earlier invalidation must have landed first: in the lab the data itself is everywhere at once, so an
  // earlier write's message arriving mid-trial would drop the primed entry and let the new value in early.
  const settleMs = Math.max(...lab.regions.map((r) => r.rttMs)) / 2 + 250;
  for (let k = 0; k < trials; k++) {
    const mark = `${Date.now()}-${k}`;
    await Bun.sleep(settleMs);
    // Primed: the far region serves the old value from its L1, so the figure is the invalidation's trip, not a
    // read that would have gone to the (in the lab instantly replicated) database anyway.
    const primeUntil = performance.now() + 3_000;
    do {
      await read();
      if (lastCache !== "hit-l1") await Bun.sleep(20);
    } while (lastCache !== "hit-l1" && performance.now() < primeUntil);
    // From the moment the write leaves: its commit lies somewhere in its own round trip, so this is the bound.
    const sent = performance.now();
    const w = await fetch(`${primaryEdge}/api/v1/users/${writer.id}/preferences`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${writer.token}`, "content-type": "application/json" },
      body: JSON.stringify({ coherence: mark }),
    });
    if (w.status !== 200) throw new Error(`coherence write: ${w.status} ${await w.text()}`);
    const deadline = sent + 10_000;
    let seen = false;
    while (performance.now() < deadline) {
      if ((await read()) === mark) {
        seen = true;
        break;
      }
      await Bun.sleep(1);
    }
    delays.push(seen ? performance.now() - sent : Infinity);
  }
  delays.sort((a, b) => a - b);
  return delays[Math.floor(delays.length / 2)]!;
}

export interface LossResult {
  get_requests: number;
  get_5xx: number;
  write_requests: number;
  write_500: number;
  write_503: number;
  replica_acted_as_primary: boolean;
  /** Printed, not in the JSON: seconds from the primary's return to the first accepted far write, to every instance healthy again, and a fresh read through the bus. */
  recovery: { first_write_s: number; all_healthy_s: number; coherence_after_ms: number };
  other_write_statuses: Record<string, number>;
}

export async function primaryLoss(lab: Lab, callers: Map<string, Caller[]>, admin: string, opts: { lossMs: number; concurrency: number }): Promise<LossResult> {
  const others = lab.regions.filter((r) => r.name !== lab.primaryRegion).map((r) => r.name);
  const replicas = lab.instances.filter((i) => i !== lab.primary);
  let acted = false;
  const samples: Sample[] = [];
  lab.losePrimary();
  const until = performance.now() + opts.lossMs;

  const watch = (async () => {
    while (performance.now() < until) {
      for (const r of replicas) {
        try {
          const h = (await (await fetch(`${r.url}/health`)).json()) as { checks: { replication: { role: string } } };
          if (h.checks.replication.role === "primary") acted = true;
        } catch {}
      }
      await Bun.sleep(250);
    }
  })();
  const kinds = ["read_hot", "read_cold", "posts", "me", "read_hot", "write_post", "read_cold", "write_prefs"] as const;
  await Promise.all(
    others.flatMap((region) =>
      Array.from({ length: opts.concurrency }, async (_, w) => {
        let seq = w;
        const cs = callers.get(region)!;
        while (performance.now() < until) {
          const kind = kinds[seq % kinds.length]!;
          samples.push(await request(lab.edgeUrl(region), kind, cs[seq % cs.length]!, lab, seq));
          seq += opts.concurrency;
        }
      }),
    ),
  );
  await watch;

  const back = performance.now();
  await lab.restorePrimary();
  const far = others[others.length - 1]!;
  const farCaller = callers.get(far)![0]!;
  let firstWrite = NaN;
  for (let seq = 0; performance.now() - back < 60_000; seq++) {
    const s = await request(lab.edgeUrl(far), "write_post", farCaller, lab, 1_000_000 + seq);
    if (s.status === 201) {
      firstWrite = (performance.now() - back) / 1000;
      break;
    }
    await Bun.sleep(100);
  }
  let allHealthy = NaN;
  while (performance.now() - back < 60_000) {
    const res = await fetch(`${lab.primary.url}/cluster/stats`, { headers: { authorization: `Bearer ${admin}` } }).catch(() => null);
    const body = res && res.ok ? ((await res.json()) as { healthy_instances: number }) : null;
    if (body && body.healthy_instances >= lab.instances.length) {
      allHealthy = (performance.now() - back) / 1000;
      break;
    }
    await Bun.sleep(200);
  }
  const writer = callers.get(lab.primaryRegion)![0]!;
  const coherenceAfter = await coherence(lab, far, writer, farCaller, 1);

  const gets = samples.filter((s) => s.kind === "read_hot" || s.kind === "read_cold" || s.kind === "posts" || s.kind === "me");
  const writes = samples.filter((s) => s.kind === "write_post" || s.kind === "write_prefs");
  const otherWrites: Record<string, number> = {};
  for (const s of writes) if (s.status !== 503) otherWrites[s.status] = (otherWrites[s.status] ?? 0) + 1;
  return {
    get_requests: gets.length,
    get_5xx: gets.filter((s) => s.status >= 500).length,
    write_requests: writes.length,
    // Every 5xx but 503 counts here: the figure says "writes failed the wrong way".
    write_500: writes.filter((s) => s.status >= 500 && s.status !== 503).length,
    write_503: writes.filter((s) => s.status === 503).length,
    replica_acted_as_primary: acted,
    recovery: { first_write_s: firstWrite, all_healthy_s: allHealthy, coherence_after_ms: coherenceAfter },
    other_write_statuses: otherWrites,
  };
}
