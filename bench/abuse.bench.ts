// The freeze check: the costliest bodies we know of (each at most BODY_LIMIT_BYTES), 20 at once, three rounds
// each, against the service in default (development) and production mode, while /health/live is polled back
// to back. Reports the server's CPU per refused request (the whole process's, and its main thread's: the event
// loop's, which the machine's load disturbs least) and /health/live's latency meanwhile, beside /health/live's
// latency with no such load in the same run (the baseline).
//
// Two situations, reported apart. The first burst after a start ("cold"): the first kind, one round, before any
// other request than /health/live, so its path runs before the JIT has compiled it (the first few hundred such
// requests cost several times what later ones do). Then, after a warm-up of two unmeasured rounds of every kind,
// each kind measured: an instance under a sustained attack.
//
//   bun run bench -- abuse
//   ABUSE_BODIES="nested [|escaped" bun run bench -- abuse   (only the kinds whose name contains one of these;
//                                                             prints the table, writes no result file)
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { table, writeResult } from "./lib.ts";
import { freePort, spawnService, waitFor } from "../test/support/process.ts";
import { freezeCheck, hostileBodies, percentile, sendAtOnce, type FreezeFigures } from "../test/support/hostile-bodies.ts";

const ROOT = join(import.meta.dir, "..");
const LIMIT = 64 * 1024;
const only = (process.env.ABUSE_BODIES ?? "").split("|").filter((x) => x !== "");
const rows: Record<string, string | number>[] = [];
const results: Record<string, unknown>[] = [];

for (const mode of ["development", "production"] as const) {
  const dir = join(ROOT, ".tmp", `bench-abuse-${mode}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const s = spawnService(
    {
      NODE_ENV: mode,
      DATABASE_URL: `file:${join(dir, "app.db")}`,
      JWT_SECRET: "bench-secret-bench-secret-bench-secret-0",
      LOG_LEVEL: "warn",
      METRICS_ENABLED: "false",
      BODY_LIMIT_BYTES: String(LIMIT),
      // The limits would answer 429 before the bodies are read: what is measured is the refusal of the body.
      RATE_LIMIT_LOGIN_IP_PER_MINUTE: "0",
      RATE_LIMIT_REGISTER_PER_HOUR: "0",
      RATE_LIMIT_WRITE_PER_MINUTE: "0",
    },
    port,
  );
  try {
    await waitFor(`${s.url}/health/live`, 20_000);
    const idle: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await (await fetch(`${s.url}/health/live`)).arrayBuffer();
      idle.push(performance.now() - t);
    }
    idle.sort((a, b) => a - b);
    rows.push({ mode, body: "(none: baseline)", status: 200, cpu_ms: "", loop_cpu_ms: "", refuse_max_ms: "", health_p50_ms: percentile(idle, 50), health_p99_ms: percentile(idle, 99) });
    const bodies = hostileBodies(LIMIT).filter((b) => only.length === 0 || only.some((o) => b.name.includes(o)));
    const row = (f: FreezeFigures, phase: string) => {
      results.push({ mode, phase, ...f });
      rows.push({ mode, body: `${f.body} (${phase})`, status: f.status, cpu_ms: f.cpu_ms_per_request ?? "n/a", loop_cpu_ms: f.loop_cpu_ms_per_request ?? "n/a", refuse_max_ms: f.refuse_max_ms, health_p50_ms: f.health_p50_ms, health_p99_ms: f.health_p99_ms });
    };
    row(await freezeCheck(s.url, s.proc.pid, bodies[0]!, 20, 1), "cold: first burst after the start");
    for (const b of bodies) for (let r = 0; r < 2; r++) await sendAtOnce(s.url, b, 20);
    for (const b of bodies) row(await freezeCheck(s.url, s.proc.pid, b), "warm");
    results.push({ mode, body: "baseline", health_p50_ms: percentile(idle, 50), health_p99_ms: percentile(idle, 99) });
  } finally {
    s.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
table(rows);
writeResult("abuse", { body_limit_bytes: LIMIT, concurrent: 20, rounds: 3, results });
