// /internal/* only on the private INTERNAL_PORT listener; the public port answers 404 there. And the one
// shutdown deadline: a stop with a request, a job and a cron run that never finish still ends in time.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { primaryBaseUrl } from "../src/platform/cluster/internal.ts";
import { shutdownBudgetMs } from "../src/platform/lifecycle/shutdown.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { primaryLink } from "../src/main/options.ts";
import { waitUntil } from "./support/wait.ts";
import { rawRequest } from "./support/raw-http.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const TOKEN = "internal-port-test-token";
const started: RunningInstance[] = [];
afterAll(async () => {
  for (const s of started) await s.stop();
});

async function start(overrides: Record<string, string> = {}) {
  const inst = await serveApp({ INTERNAL_TOKEN: TOKEN, CRON_ENABLED: "false", ...overrides }, undefined, { logger: createLogger("silent", {}) });
  started.push(inst);
  return inst;
}

const beat = { region: "syd", role: "replica", host: "h", port: 1, version: "t", started_at: "2024-01-01T00:00:00.000Z", in_flight: 0, cpu_percent: 0, memory_percent: 0 };

describe("INTERNAL_PORT", () => {
  test("the public port answers 404 problem+json on /internal/*; the private listener serves them", async () => {
    const inst = await start();
    expect(inst.internalUrl).not.toBeNull();
    expect(inst.internalUrl).not.toBe(inst.url);
    const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", "x-request-id": "rid-int" };
    for (const path of ["/internal/instances/r1", "/internal", "/internal/instances/prune", "/internal/cache/invalidate"]) {
      const pub = await fetch(`${inst.url}${path}`, { method: "PUT", headers: auth, body: JSON.stringify(beat) });
      expect(pub.status).toBe(404);
      expect(pub.headers.get("content-type")).toBe("application/problem+json");
      expect(pub.headers.get("x-request-id")).toBe("rid-int");
    }
    const priv = await fetch(`${inst.internalUrl}/internal/instances/r1`, { method: "PUT", headers: auth, body: JSON.stringify(beat) });
    expect([200, 204]).toContain(priv.status);
    const noToken = await fetch(`${inst.internalUrl}/internal/instances/r1`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(beat) });
    expect(noToken.status).toBe(401);
    // Only /internal/* there: the API stays on the public port.
    expect((await fetch(`${inst.internalUrl}/health/live`)).status).toBe(404);
    expect((await fetch(`${inst.url}/health/live`)).status).toBe(200);
  });

  test("every spelling of /internal on the public port is the 404 of an unknown path: its headers and its log line", async () => {
    const lines: string[] = [];
    const inst = await serveApp(
      { INTERNAL_TOKEN: TOKEN, CRON_ENABLED: "false", CORS_ORIGINS: "https://app.example" },
      undefined,
      { logger: createLogger("info", {}, (l) => lines.push(l)) },
    );
    started.push(inst);
    const requestLines = () => lines.filter((l) => JSON.parse(l).msg === "request").length;
    const unknown = await rawRequest(inst.url, "GET", "/nope", { origin: "https://app.example" });
    const paths = ["/internal", "/internal/instances/r1", "/internal/instances/r1;x", "//internal/instances/r1", "/%69nternal/instances/r1", "/INTERNAL/instances/r1", "/internal;x/instances/r1", "/api/../internal/instances/r1", "/api/%2e%2e/internal/instances/r1", "/./internal/instances/r1"];
    for (const method of ["GET", "OPTIONS", "PUT"]) {
      for (const path of paths) {
        const before = requestLines();
        const headers = { origin: "https://app.example", "access-control-request-method": "PUT", authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
        const r = await rawRequest(inst.url, method, path, headers, method === "PUT" ? JSON.stringify(beat) : undefined);
        const what = `${method} ${path}`;
        expect({ what, status: r.status, type: r.headers["content-type"] }).toEqual({ what, status: 404, type: "application/problem+json" });
        expect({ what, body: JSON.parse(r.body) }).toEqual({ what, body: JSON.parse(unknown.body) });
        for (const name of ["x-content-type-options", "vary", "access-control-allow-origin", "cache-control"]) {
          expect({ what, name, value: r.headers[name] }).toEqual({ what, name, value: unknown.headers[name] });
        }
        expect(r.headers["x-request-id"]).toBeTruthy();
        await waitUntil(() => requestLines() === before + 1, 5_000, `the log line of ${what}`);
      }
    }
    expect(unknown.headers["access-control-allow-origin"]).toBe("https://app.example");
  });

  test("without INTERNAL_TOKEN there is no private listener", async () => {
    const inst = await start({ INTERNAL_TOKEN: "" });
    expect(inst.internalUrl).toBeNull();
  });

  test("on Fly a replica calls the primary's INTERNAL_PORT, not its app port", () => {
    const config = loadConfig({ FLY_APP_NAME: "neodyme-edge", PORT: "8081" });
    expect(config.INTERNAL_PORT).toBe(9092);
    expect(primaryBaseUrl(primaryLink(config), "148e272c4e4389")).toBe("http://148e272c4e4389.vm.neodyme-edge.internal:9092");
  });
});

describe("one shutdown deadline", () => {
  test("a hung request and a hung job do not stretch the stop past SHUTDOWN_TIMEOUT_MS plus the final close", async () => {
    const inst = await start({ SHUTDOWN_TIMEOUT_MS: "1500" });
    let release!: () => void;
    const hang = new Promise<void>((r) => (release = r));
    inst.deps.queue.register({ type: "test_hang", writesDb: false, handler: () => hang });
    const job = await inst.deps.queue.enqueue("test_hang", {});
    // A request that never ends: the body is never finished.
    const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"email":')); } });
    void fetch(`${inst.url}/api/v1/users`, { method: "POST", headers: { "content-type": "application/json" }, body, duplex: "half" } as RequestInit).catch(() => {});
    // Both are under way before the stop.
    await waitUntil(async () => inst.deps.inFlight() >= 1 && (await inst.deps.queue.getJob(job))?.status === "running", 5_000, "the request and the job to be in flight");
    const t0 = performance.now();
    await inst.stop();
    const took = performance.now() - t0;
    release();
    expect(took).toBeLessThan(shutdownBudgetMs(1500) + 1_000);
  }, 20_000);
});
