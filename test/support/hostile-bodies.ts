// The costliest request bodies of at most `limit` bytes that we know of, for the freeze check (bench/abuse.bench.ts
// and test/fuzz-abuse.test.ts): each is refused, and must be refused cheaply. Most now stop at the shape check
// (json-depth.ts: depth, and each route's value bound); they stay here so that a regression shows.
import { cpuSeconds, mainThreadCpuMs } from "./process.ts";

export interface HostileBody {
  name: string;
  method: "POST";
  path: string;
  body: string;
}

const fill = (unit: string, bytes: number) => Array(Math.max(1, Math.floor(bytes / (unit.length + 1)))).fill(unit).join(",");
const nest = (depth: number, inner: string) => "[".repeat(depth) + inner + "]".repeat(depth);

export function hostileBodies(limit: number): HostileBody[] {
  const room = limit - 256;
  const login = (email: string) => `{"email":${email},"password":"x"}`;
  return [
    { name: "nested [ past the depth limit", method: "POST", path: "/api/v1/auth/login", body: "[".repeat(limit) },
    { name: "nested { past the depth limit", method: "POST", path: "/api/v1/users", body: '{"a":'.repeat(Math.floor(limit / 5)) },
    { name: "depth 30 arrays of zeros", method: "POST", path: "/api/v1/auth/login", body: login(nest(29, fill("0", room - 64))) },
    { name: "depth 30 arrays of objects", method: "POST", path: "/api/v1/users", body: `{"email":${nest(28, fill('{"k":[1,2]}', room - 64))},"password":"x","full_name":"x"}` },
    { name: "thousands of unknown keys", method: "POST", path: "/api/v1/users", body: `{${Array.from({ length: Math.floor(room / 12) }, (_, i) => `"k${i}":0`).join(",")}}` },
    { name: "escaped control characters", method: "POST", path: "/api/v1/users", body: `{"email":"a@b.co","password":"password1","full_name":"${"\\u0000".repeat(Math.floor(room / 6))}"}` },
    // Right under the value cap (json-depth.ts), each value as long as the size allows: the costliest bodies that
    // reach the parser and validation.
    { name: "2,000 long unknown keys", method: "POST", path: "/api/v1/users", body: `{${Array.from({ length: 2000 }, (_, i) => `"${String(i).padStart(Math.floor(room / 2000) - 6, "k")}":0`).join(",")}}` },
    { name: "depth 31, 2,000 strings", method: "POST", path: "/api/v1/auth/login", body: login(nest(30, Array.from({ length: 2000 }, () => `"${"s".repeat(Math.floor(room / 2000) - 4)}"`).join(","))) },
    // The routes with the largest value bounds (1,000 ids), sent without a token: parsed, then 401.
    { name: "2,000 long strings to bulk, anonymous", method: "POST", path: "/api/v1/admin/preferences/bulk", body: `{"user_ids":[${Array.from({ length: 2000 }, () => `"${"9".repeat(Math.floor(room / 2000) - 4)}"`).join(",")}]}` },
    // Numbers as long as the size allows, under the route's value bound: each is read a second time for its
    // source text (json-body.ts inexactNumbers).
    { name: "20 integers of thousands of digits", method: "POST", path: "/api/v1/users", body: `{"email":[${Array.from({ length: 20 }, () => "9".repeat(Math.floor(room / 20) - 1)).join(",")}]}` },
    { name: "valid prefix, broken end", method: "POST", path: "/api/v1/auth/login", body: `{"email":[${fill("1", room - 32)}` },
  ];
}

/** The process's CPU seconds so far, null where /proc cannot be read. */
const cpuOrNull = (pid: number): number | null => {
  const s = cpuSeconds(pid);
  return Number.isNaN(s) ? null : s;
};

/** The process's main thread's CPU ms so far, null where /proc cannot be read. */
const loopCpuOrNull = (pid: number): number | null => {
  const ms = mainThreadCpuMs(pid);
  return Number.isNaN(ms) ? null : ms;
};

/** Percentile of a sorted list. */
export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

export interface FreezeFigures {
  body: string;
  status: number;
  /** Server CPU per refused request (ms), over all rounds (clock ticks: steps of 10 ms over all requests). */
  cpu_ms_per_request: number | null;
  /**
   * CPU of the server's main thread, its event loop, per refused request (ms), over all rounds: what holds
   * /health/live back, in the scheduler's nanoseconds. Counts the health checks answered meanwhile too.
   */
  loop_cpu_ms_per_request: number | null;
  /** Wall time of the slowest refusal (ms). */
  refuse_max_ms: number;
  health_p50_ms: number;
  health_p99_ms: number;
  health_max_ms: number;
}

/** Sends `concurrent` copies of a body at once; the answers' statuses. */
export const sendAtOnce = (url: string, b: HostileBody, concurrent: number) =>
  Promise.all(
    Array.from({ length: concurrent }, async () => {
      const res = await fetch(url + b.path, { method: b.method, headers: { "content-type": "application/json" }, body: b.body });
      await res.arrayBuffer();
      return res.status;
    }),
  );

/**
 * Sends `concurrent` copies of a body at once, `rounds` times, while /health/live is polled back to back;
 * returns the refusal statuses and times, the server's CPU per request, and /health/live's latencies meanwhile.
 */
export async function freezeCheck(url: string, pid: number | null, b: HostileBody, concurrent = 20, rounds = 3): Promise<FreezeFigures> {
  const health: number[] = [];
  const refusals: number[] = [];
  let status = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const s = performance.now();
      await (await fetch(`${url}/health/live`)).arrayBuffer();
      health.push(performance.now() - s);
      await Bun.sleep(2);
    }
  })();
  const cpu0 = pid !== null ? cpuOrNull(pid) : null;
  const loop0 = pid !== null ? loopCpuOrNull(pid) : null;
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      Array.from({ length: concurrent }, async () => {
        const s = performance.now();
        const res = await fetch(url + b.path, { method: b.method, headers: { "content-type": "application/json" }, body: b.body });
        await res.arrayBuffer();
        refusals.push(performance.now() - s);
        status = res.status;
      }),
    );
  }
  const cpu1 = pid !== null ? cpuOrNull(pid) : null;
  const loop1 = pid !== null ? loopCpuOrNull(pid) : null;
  polling = false;
  await poll;
  health.sort((x, y) => x - y);
  refusals.sort((x, y) => x - y);
  const round = (n: number, per = 100) => Math.round(n * per) / per;
  return {
    body: b.name,
    status,
    cpu_ms_per_request: cpu0 !== null && cpu1 !== null ? round(((cpu1 - cpu0) * 1000) / (concurrent * rounds)) : null,
    loop_cpu_ms_per_request: loop0 !== null && loop1 !== null ? round((loop1 - loop0) / (concurrent * rounds), 1000) : null,
    refuse_max_ms: round(refusals.at(-1) ?? 0),
    health_p50_ms: round(percentile(health, 50)),
    health_p99_ms: round(percentile(health, 99)),
    health_max_ms: round(health.at(-1) ?? 0),
  };
}
