// `bun run lab -- regions [--regions ams:0,iad:80,syd:250] [--duration S] [--requests N] [--loss S] [--env K=V]`: starts the
// lab, runs the workload in every region at once, the coherence probes and the primary loss, prints one table
// per region and writes bench/results/regions.json in the shape CONTRACT.md gives. Stops by itself.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { writeFiguresPage } from "./report.ts";
import { join, resolve } from "node:path";
import { coherence, primaryLoss, type LossResult } from "./scenarios.ts";
import { startLab, type Lab, type RegionSpec } from "./topology.ts";
import { callersFor, login, pct, round1, runRegion, type Caller, type Sample } from "./workload.ts";

export interface RegionsOptions {
  regions: RegionSpec[];
  durationS: number;
  requests: number;
  lossS: number;
  concurrency: number;
  primaryRedirectTimeoutMs: number;
  users: number;
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export function parseRegions(spec: string): RegionSpec[] {
  const regions = spec.split(",").map((part) => {
    const m = /^([a-z0-9-]+):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) throw new Error(`--regions: "${part}" is not name:rtt_ms`);
    return { name: m[1]!, rttMs: Number(m[2]) };
  });
  if (regions.length < 2) throw new Error("--regions: give at least two regions, the primary first");
  if (regions[0]!.rttMs !== 0) throw new Error("--regions: the first region is the primary's, its RTT is 0");
  return regions;
}

export interface RegionFigures {
  name: string;
  rtt_ms: number;
  primary: boolean;
  read_l1_hit_p50_ms: number;
  read_l1_miss_p50_ms: number;
  read_p99_ms: number;
  write_p50_ms: number;
  write_p99_ms: number;
  login_p50_ms: number;
  client_edge_rtt_ms: number;
  requests: number;
  errors_5xx: number;
}

export interface RegionsResult {
  regions: RegionFigures[];
  coherence_ms: Record<string, number>;
  primary_loss: Omit<LossResult, "recovery" | "other_write_statuses">;
}

function figures(spec: RegionSpec, primary: boolean, samples: Sample[]): RegionFigures {
  const detail = samples.filter((s) => (s.kind === "read_hot" || s.kind === "read_cold") && s.status === 200);
  const reads = samples.filter((s) => s.kind === "read_hot" || s.kind === "read_cold" || s.kind === "posts" || s.kind === "me");
  const writes = samples.filter((s) => s.kind === "write_post" || s.kind === "write_prefs");
  const ms = (xs: Sample[]) => xs.map((s) => s.ms);
  return {
    name: spec.name,
    rtt_ms: spec.rttMs,
    primary,
    read_l1_hit_p50_ms: round1(pct(ms(detail.filter((s) => s.cache === "hit-l1")), 50)),
    read_l1_miss_p50_ms: round1(pct(ms(detail.filter((s) => s.cache !== "hit-l1")), 50)),
    read_p99_ms: round1(pct(ms(reads), 99)),
    write_p50_ms: round1(pct(ms(writes), 50)),
    write_p99_ms: round1(pct(ms(writes), 99)),
    login_p50_ms: round1(pct(ms(samples.filter((s) => s.kind === "login")), 50)),
    client_edge_rtt_ms: 0,
    requests: samples.length,
    errors_5xx: samples.filter((s) => s.status >= 500).length,
  };
}

/** `n` writes one at a time straight at the primary (no edge, no link): its own write time. */
async function ownWrites(lab: Lab, caller: Caller, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fetch(`${lab.primary.url}/api/v1/users/${caller.id}/posts`, {
      method: "POST",
      headers: { authorization: `Bearer ${caller.token}`, "content-type": "application/json" },
      body: JSON.stringify({ title: "own", content: "x" }),
    });
    out.push(performance.now() - t0);
  }
  return out;
}

export async function runRegionsLab(o: RegionsOptions): Promise<{ result: RegionsResult; loss: LossResult; extra: Record<string, unknown> }> {
  const log = o.log ?? ((l: string) => console.log(l));
  log(`starting ${o.regions.map((r) => `${r.name} (${r.rttMs} ms)`).join(", ")}...`);
  const lab: Lab = await startLab({ regions: o.regions, users: o.users, primaryRedirectTimeoutMs: o.primaryRedirectTimeoutMs, env: o.env });
  try {
    const admin = await login(lab, lab.seeded.adminEmail);
    const callers = new Map<string, Caller[]>();
    for (const [i, r] of o.regions.entries()) callers.set(r.name, await callersFor(lab, i, 4));

    // The primary's own write time, alone, for the "one trip" check.
    const pc = callers.get(lab.primaryRegion)![0]!;
    const own = await ownWrites(lab, pc, 20);

    log(`workload: ${o.requests} requests per region, ${o.concurrency} clients each, at most ${o.durationS} s...`);
    const deadline = performance.now() + o.durationS * 1000;
    const perRegion = await Promise.all(o.regions.map((r) => runRegion(lab, r.name, callers.get(r.name)!, { requests: o.requests, concurrency: o.concurrency, deadline })));
    const regions = o.regions.map((r, i) => figures(r, i === 0, perRegion[i]!));
    const errors: Record<string, Record<string, number>> = {};
    for (const [i, r] of o.regions.entries()) {
      for (const s of perRegion[i]!) {
        if (s.status < 500) continue;
        const by = (errors[r.name] ??= {});
        by[`${s.kind} ${s.status}`] = (by[`${s.kind} ${s.status}`] ?? 0) + 1;
      }
    }

    // Quiet writes, one at a time from each region, beside the primary's own (direct) writes in the same
    // moment: "one trip to the primary" without the mixed workload's queueing on a shared, loaded machine.
    const quiet: Record<string, { write_p50_ms: number; bound_ms: number }> = {};
    const ownNow = await ownWrites(lab, pc, 15);
    for (const r of o.regions) {
      const s = await runRegion(lab, r.name, callers.get(r.name)!, { requests: 15, concurrency: 1, deadline: performance.now() + 30_000, kinds: ["write_post"] });
      quiet[r.name] = { write_p50_ms: round1(pct(s.map((x) => x.ms), 50)), bound_ms: round1(1.2 * (r.rttMs + pct(ownNow, 50))) };
    }

    log("coherence...");
    const coherenceMs: Record<string, number> = {};
    for (const r of o.regions.slice(1)) coherenceMs[r.name] = round1(await coherence(lab, r.name, callers.get(lab.primaryRegion)![1]!, callers.get(r.name)![1]!));

    log(`primary loss: SIGKILL ${lab.primary.id} and cut its region's links for ${o.lossS} s...`);
    const loss = await primaryLoss(lab, callers, admin, { lossMs: o.lossS * 1000, concurrency: o.concurrency });
    const { recovery, other_write_statuses, ...lossFigures } = loss;
    const cacheStats = await Promise.all(
      lab.instances.map(async (i) => [i.id, await (await fetch(`${i.url}/cache/stats`, { headers: { authorization: `Bearer ${admin}` } })).json().catch(() => null)] as const),
    );
    return {
      result: { regions, coherence_ms: coherenceMs, primary_loss: lossFigures },
      loss,
      extra: { primary_own_write_p50_ms: round1(pct(own, 50)), quiet_writes: quiet, errors_5xx: errors, recovery, other_write_statuses, cache: Object.fromEntries(cacheStats) },
    };
  } finally {
    await lab.close();
  }
}

function table(result: RegionsResult, extra: Record<string, unknown>): string {
  const cols: [string, keyof RegionFigures][] = [
    ["region", "name"],
    ["rtt", "rtt_ms"],
    ["L1 hit p50", "read_l1_hit_p50_ms"],
    ["L1 miss p50", "read_l1_miss_p50_ms"],
    ["read p99", "read_p99_ms"],
    ["write p50", "write_p50_ms"],
    ["write p99", "write_p99_ms"],
    ["login p50", "login_p50_ms"],
    ["requests", "requests"],
    ["5xx", "errors_5xx"],
  ];
  const rows = [cols.map(([h]) => h), ...result.regions.map((r) => cols.map(([, k]) => String(r[k]) + (k === "name" && r.primary ? "*" : "")))];
  const widths = cols.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join("  "));
  lines.push("(ms; * the primary region; client-to-edge RTT 0)");
  lines.push(`primary's own write p50: ${extra.primary_own_write_p50_ms} ms; quiet writes per region (p50 vs 1.2 x (RTT + own)): ${JSON.stringify(extra.quiet_writes)}`);
  lines.push(`coherence (write in ${result.regions[0]!.name}, first fresh read): ${Object.entries(result.coherence_ms).map(([k, v]) => `${k} ${v} ms`).join(", ")}`);
  const l = result.primary_loss;
  lines.push(`primary loss: ${l.get_requests} GETs, ${l.get_5xx} 5xx; ${l.write_requests} writes, ${l.write_503} 503, ${l.write_500} other 5xx; replica acted as primary: ${l.replica_acted_as_primary}`);
  lines.push(`5xx during the workload, by kind and status: ${JSON.stringify(extra.errors_5xx)}`);
  lines.push(`recovery: ${JSON.stringify(extra.recovery)}; other write statuses during the loss: ${JSON.stringify(extra.other_write_statuses)}`);
  return lines.join("\n");
}

export async function main(args: string[]): Promise<number> {
  const get = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const o: RegionsOptions = {
    regions: parseRegions(get("regions", "ams:0,iad:80,syd:250")),
    durationS: Number(get("duration", "120")),
    requests: Number(get("requests", "2000")),
    lossS: Number(get("loss", "30")),
    concurrency: Number(get("concurrency", "4")),
    primaryRedirectTimeoutMs: Number(get("primary-redirect-timeout", "5000")),
    users: Number(get("users", "1000")),
    // --env KEY=VALUE (repeatable): every instance gets it, e.g. CACHE_L2_POLICY=always to compare designs.
    env: Object.fromEntries(args.flatMap((a, i) => (a === "--env" && args[i + 1]?.includes("=") ? [args[i + 1]!.split(/=(.*)/s).slice(0, 2)] : []))),
  };
  const { result, extra } = await runRegionsLab(o);
  console.log(table(result, extra));
  const out = resolve(import.meta.dir, "../../bench/results");
  mkdirSync(out, { recursive: true });
  // A run with other settings is a comparison, not the result of record.
  const file = Object.keys(o.env ?? {}).length > 0 ? "regions-variant.json" : "regions.json";
  writeFileSync(join(out, file), JSON.stringify(result, null, 2) + "\n");
  // What the contract's shape has no room for (command, load, recovery) goes beside it, for the figures page.
  const runsFile = join(out, "regions-runs.json");
  const runs = existsSync(runsFile) ? JSON.parse(readFileSync(runsFile, "utf8")) : {};
  runs[file] = {
    command: `bun run lab -- regions ${args.join(" ")}`.trim(),
    at: new Date().toISOString(),
    load_avg_1m: Math.round(loadavg()[0]! * 100) / 100,
    primary_own_write_p50_ms: extra.primary_own_write_p50_ms,
    quiet_writes: extra.quiet_writes,
    errors_5xx: extra.errors_5xx,
    recovery: extra.recovery,
  };
  writeFileSync(runsFile, JSON.stringify(runs, null, 2) + "\n");
  writeFiguresPage();
  console.log(`wrote bench/results/${file}${file === "regions.json" ? "" : ` (with ${JSON.stringify(o.env)})`}`);
  return 0;
}
