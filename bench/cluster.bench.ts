// What the cluster machinery costs per request: the /metrics bookkeeping (route label + histogram) measured
// alone against a baseline that only reads the path, then end to end over HTTP with METRICS_ENABLED on vs off
// (same process, alternating rounds). Loopback only, bounded to about 20 s. The machine is shared: read the
// ratios, not the absolute figures.
import { loadConfig } from "../src/config.ts";
import { HttpMetrics, pathnameOf } from "../src/platform/observability/metrics.ts";
import { requestObserver } from "../src/platform/http/request-context.ts";
import { startInstance } from "../src/main/serve.ts";
import { createApp } from "../src/main/app.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { table, writeResult } from "./lib.ts";

const TMP = join(import.meta.dir, "..", ".tmp");

function env(dir: string, metrics: boolean): Record<string, string> {
  return {
    NODE_ENV: "test",
    DATABASE_URL: `file:${join(dir, "app.db")}`,
    LOG_LEVEL: "silent",
    JWT_SECRET: "bench-secret-bench-secret-bench-secret-01",
    PORT: "0",
    HOST: "127.0.0.1",
    METRICS_ENABLED: String(metrics),
    METRICS_PORT: "0",
    CACHE_WARM_COUNT: "0",
    CRON_ENABLED: "false",
    JOBS_WORKER_ENABLED: "false",
  };
}

// 1. Per-call cost of the bookkeeping, against reading the path alone.
const dir0 = mkdtempSync(join(TMP, "bench-cluster-"));
const { buildDeps } = await import("../src/main/platform.ts");
const { createLogger } = await import("../src/platform/observability/logger.ts");
const built = await buildDeps(loadConfig(env(dir0, false)), createLogger("silent"));
const routes = createApp(built.deps, built.features).routes;
const requests = ["/health/live", "/api/v1/users/42", "/api/v1/users/42/posts?page=2", "/nope"].map((p) => new Request(`http://localhost${p}`));
const N = 300_000;
let sink = 0;
const t0 = performance.now();
for (let i = 0; i < N; i++) sink += pathnameOf(requests[i & 3]!.url).length;
const baseNs = ((performance.now() - t0) * 1e6) / N;
// The worst case: a request answered before routing, labelled from the route table (routed ones carry their route).
const observer = requestObserver(createLogger("silent"), { metrics: new HttpMetrics(), routes: () => routes });
const t1 = performance.now();
for (let i = 0; i < N; i++) {
  const r = requests[i & 3]!;
  observer.observe(r.method, undefined, pathnameOf(r.url), 200, performance.now() - t1, undefined);
}
const observeNs = ((performance.now() - t1) * 1e6) / N;
await built.close();
rmSync(dir0, { recursive: true, force: true });

// 2. End to end: the same requests through two instances, metrics on and off, in alternating rounds.
async function load(url: string, ms: number, concurrency = 16): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = await fetch(url);
        await r.arrayBuffer();
        n++;
      }
    }),
  );
  return (n / ms) * 1000;
}

const dirs = [mkdtempSync(join(TMP, "bench-cluster-")), mkdtempSync(join(TMP, "bench-cluster-"))];
const on = await startInstance(loadConfig(env(dirs[0]!, true)));
const off = await startInstance(loadConfig(env(dirs[1]!, false)));
const paths = ["/health/live", "/api/v1/users/42"];
const rounds = 3;
const ROUND_MS = 1_500;
const sums = { on: 0, off: 0 };
for (const p of paths) {
  await load(on.url + p, 300);
  await load(off.url + p, 300);
}
for (let r = 0; r < rounds; r++) {
  for (const p of paths) {
    sums.off += await load(off.url + p, ROUND_MS);
    sums.on += await load(on.url + p, ROUND_MS);
  }
}
await on.stop();
await off.stop();
for (const d of dirs) rmSync(d, { recursive: true, force: true });

const rps = { on: sums.on / (rounds * paths.length), off: sums.off / (rounds * paths.length) };
const rows = [
  { measure: "path only (baseline), ns/call", value: baseNs },
  { measure: "route label + histogram, ns/call", value: observeNs },
  { measure: "HTTP req/s, metrics off (baseline)", value: rps.off },
  { measure: "HTTP req/s, metrics on", value: rps.on },
  { measure: "ratio on/off", value: rps.on / rps.off },
];
table(rows);
console.log(`(sink ${sink > 0 ? "ok" : "?"}; ${routes.length} routes; ${rounds} alternating rounds of ${ROUND_MS} ms per path, 16 concurrent clients in the same process)`);
writeResult("cluster", {
  observe_ns_per_call: observeNs,
  baseline_path_ns_per_call: baseNs,
  http_rps_metrics_on: rps.on,
  http_rps_metrics_off: rps.off,
  ratio_on_off: rps.on / rps.off,
  note: "shared 2-core machine; client and servers in one process; read the ratio",
});
