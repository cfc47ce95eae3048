// The regions lab with short round trips (bun run lab -- regions runs it with realistic ones): two regions,
// a replica 60 ms from the primary, through the edge stand-in. Reads stay in their region (no Redis call per
// read crosses the link), a write in the primary region reaches the far region's readers, and losing the
// primary (SIGKILL plus a partition) costs no GET a 5xx and no write a 500, no replica acts as the primary,
// and everything recovers when it returns, without a restart.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { coherence, primaryLoss } from "../lab/regions/scenarios.ts";
import { startLab, type Lab } from "../lab/regions/topology.ts";
import { callersFor, login, request, type Caller } from "../lab/regions/workload.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ORIGIN = "https://app.example";
let lab: Lab;
let admin: string;
const callers = new Map<string, Caller[]>();

beforeAll(async () => {
  lab = await startLab({
    regions: [
      { name: "ams", rttMs: 0 },
      { name: "syd", rttMs: 60 },
    ],
    users: 60,
    primaryRedirectTimeoutMs: 500,
    heartbeatSeconds: 1,
    env: { CORS_ORIGINS: ORIGIN },
  });
  admin = await login(lab, lab.seeded.adminEmail);
  callers.set("ams", await callersFor(lab, 0, 2));
  callers.set("syd", await callersFor(lab, 1, 2));
}, 60_000);

afterAll(async () => {
  await lab?.close();
}, 30_000);

describe("regions lab, 60 ms", () => {
  test("reads in the far region make no Redis call per request across the link", async () => {
    const link = lab.redisLink("syd")!;
    const edge = lab.edgeUrl("syd");
    const c = callers.get("syd")![0]!;
    // Warm: the L2 policy has probed, sessions and the hot ids are in L1.
    for (let i = 0; i < 40; i++) await request(edge, i % 2 ? "read_hot" : "read_cold", c, lab, i);
    const before = link.upChunks;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const s = await request(edge, (["read_hot", "read_cold", "posts", "me"] as const)[i % 4]!, c, lab, i);
      expect(s.status).toBe(200);
    }
    // Background traffic (bus, queue, probes) crosses too, but nothing near one call per read.
    expect(link.upChunks - before).toBeLessThan(n / 4);
  }, 30_000);

  test("a write in the primary region reaches the far region's readers (its L1 primed with the old value)", async () => {
    const ms = await coherence(lab, "syd", callers.get("ams")![0]!, callers.get("syd")![1]!, 2);
    expect(ms).toBeLessThan(2_000);
  }, 30_000);

  test("a far write is replayed to the primary and succeeds", async () => {
    const s = await request(lab.edgeUrl("syd"), "write_post", callers.get("syd")![0]!, lab, 1);
    expect(s.status).toBe(201);
  });

  test("a CORS preflight in the far region is replayed to the primary (LiteFS) and answered as the replica would", async () => {
    const preflight = { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" };
    const far = lab.edgeLink("syd", lab.primary.id)!;
    const before = far.upChunks;
    const viaEdge = await fetch(`${lab.edgeUrl("syd")}/api/v1/users`, { method: "OPTIONS", headers: preflight });
    // The LiteFS proxy's rule: OPTIONS is not GET/HEAD, so it crossed to the primary.
    expect(far.upChunks).toBeGreaterThan(before);
    const replica = lab.instances.find((i) => i.region === "syd")!;
    const direct = await fetch(`${replica.url}/api/v1/users`, { method: "OPTIONS", headers: preflight });
    for (const res of [viaEdge, direct]) {
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
      expect(res.headers.get("access-control-allow-methods") ?? "").toContain("POST");
      expect(res.headers.get("fly-replay")).toBeNull();
    }
    expect(viaEdge.headers.get("access-control-max-age")).toBe(direct.headers.get("access-control-max-age"));
  });

  test("losing the primary: 0 GET 5xx, writes 503 never 500, no replica acts as the primary, recovery without a restart", async () => {
    const replica = lab.instances.find((i) => i.region === "syd")!;
    const pid = replica.proc!.proc.pid;
    const r = await primaryLoss(lab, callers, admin, { lossMs: 3_000, concurrency: 2 });
    expect(r.get_requests).toBeGreaterThan(0);
    expect(r.get_5xx).toBe(0);
    expect(r.write_requests).toBeGreaterThan(0);
    expect(r.write_500).toBe(0);
    expect(r.write_503).toBe(r.write_requests);
    expect(r.replica_acted_as_primary).toBe(false);
    expect(Number.isFinite(r.recovery.first_write_s)).toBe(true);
    expect(Number.isFinite(r.recovery.all_healthy_s)).toBe(true);
    expect(Number.isFinite(r.recovery.coherence_after_ms)).toBe(true);
    // The replica was never restarted.
    expect(replica.proc!.proc.pid).toBe(pid);
    expect(replica.proc!.proc.exitCode).toBeNull();
  }, 60_000);
});
