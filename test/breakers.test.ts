// Circuit breakers against a real failing dependency (a local HTTP server told to fail, hang or slow down):
// the circuit opens after the threshold, fails fast while open, one probe closes it; jobs that meet an open
// circuit are deferred, not failed; the state shows on /metrics and /health.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import type { Database as _Db } from "../src/platform/db/client.ts";
import { registryWriter } from "../src/platform/cluster/registry.ts";
import type { Role } from "../src/platform/cluster/role.ts";
import { Breaker as L2Breaker } from "../src/platform/cache/l2.ts";
import { HttpMailer, mailFailureIsAboutTheMessage } from "../src/platform/mail/http-mailer.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { Breaker, Breakers, CircuitOpenError, breakerSettings } from "../src/platform/resilience/breakers.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { redisClient } from "./fixtures/queues.ts";
import { waitUntil } from "./support/wait.ts";
import { REDIS_URL, testEnv, testPrefix, dropPrefix, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { startFaultyServer, type FaultyServer } from "./support/faulty-server.ts";
import { primaryLink } from "../src/main/options.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const silent = createLogger("silent");
const settings = { threshold: 3, resetMs: 600, windowMs: 10_000 };

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T | undefined; error: unknown }> {
  const start = performance.now();
  try {
    const result = await fn();
    return { ms: performance.now() - start, result, error: undefined };
  } catch (error) {
    return { ms: performance.now() - start, result: undefined, error };
  }
}

describe("a breaker around a real HTTP dependency", () => {
  let dep: FaultyServer;
  beforeAll(() => {
    dep = startFaultyServer();
  });
  afterAll(() => dep.close());

  const mailer = (breaker: Breaker, timeoutMs = 5_000) => new HttpMailer({ url: dep.url, from: "a <a@example.com>", timeoutMs, breaker });
  const mail = { to: "x@example.com", subject: "s", text: "t" };

  test("opens after the threshold, then fails fast without calling; one probe closes it when the dependency is back", async () => {
    const b = new Breaker("mail_api", settings, silent, mailFailureIsAboutTheMessage);
    const m = mailer(b);
    dep.set({ kind: "fail", status: 503 });
    for (let i = 0; i < 3; i++) expect((await timed(() => m.send(mail, { idempotencyKey: `k${i}` }))).error).toBeInstanceOf(Error);
    expect(b.state).toBe("open");
    const before = dep.hits;
    const refused = await timed(() => m.send(mail, { idempotencyKey: "k-open" }));
    expect(refused.error).toBeInstanceOf(CircuitOpenError);
    expect((refused.error as CircuitOpenError).retryAfterMs).toBeGreaterThan(0);
    expect(dep.hits).toBe(before);

    dep.set({ kind: "ok" });
    await waitUntil(() => b.state !== "open", settings.resetMs + 5_000, "the reset time to pass");
    expect(b.state).toBe("half_open");
    // While the probe is out, the other callers are refused at once; the probe's success closes the circuit.
    const calls = await Promise.allSettled([1, 2, 3].map((i) => m.send(mail, { idempotencyKey: `probe-${i}` })));
    expect(dep.hits).toBe(before + 1);
    expect(calls.filter((c) => c.status === "fulfilled")).toHaveLength(1);
    expect(calls.filter((c) => c.status === "rejected" && c.reason instanceof CircuitOpenError)).toHaveLength(2);
    expect(b.state).toBe("closed");
    await m.send(mail, { idempotencyKey: "after" });
    b.shutdown();
  });

  test("a hanging dependency: the timeouts open it, then the caller's wait is bounded by the breaker, not the timeout", async () => {
    const timeoutMs = 1_500;
    const b = new Breaker("mail_api", { ...settings, threshold: 2, resetMs: 30_000 }, silent, mailFailureIsAboutTheMessage);
    const m = mailer(b, timeoutMs);
    dep.set({ kind: "hang" });
    const first = await Promise.all([timed(() => m.send(mail, { idempotencyKey: "h1" })), timed(() => m.send(mail, { idempotencyKey: "h2" }))]);
    for (const r of first) {
      expect(r.error).toBeInstanceOf(Error);
      expect(r.ms).toBeGreaterThanOrEqual(timeoutMs - 50);
    }
    expect(b.state).toBe("open");
    const later = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(() => m.send(mail, { idempotencyKey: `h-open-${i}` }))));
    const worst = Math.max(...later.map((r) => r.ms));
    expect(later.every((r) => r.error instanceof CircuitOpenError)).toBe(true);
    // Generous: a loaded machine still answers these in far less than the timeout they would otherwise wait.
    expect(worst).toBeLessThan(timeoutMs / 3);
    dep.set({ kind: "ok" });
    b.shutdown();
  });

  test("a slow dependency within its timeout is not a failure; 4xx answers about the message do not open it", async () => {
    const b = new Breaker("mail_api", settings, silent, mailFailureIsAboutTheMessage);
    const m = mailer(b, 2_000);
    dep.set({ kind: "slow", ms: 150 });
    for (let i = 0; i < 4; i++) await m.send(mail, { idempotencyKey: `s${i}` });
    dep.set({ kind: "fail", status: 400 });
    for (let i = 0; i < 5; i++) expect((await timed(() => m.send(mail, { idempotencyKey: `b${i}` }))).error).toBeInstanceOf(Error);
    expect(b.state).toBe("closed");
    dep.set({ kind: "ok" });
    b.shutdown();
  });

  test("a replica's calls to the primary go through the primary's breaker", async () => {
    const config = loadConfig(testEnv({ PRIMARY_URL: dep.url, INTERNAL_TOKEN: "internal-token-0123456789", BREAKER_PRIMARY: "2/30" }));
    const replica: Role = { isPrimary: () => false, primaryName: () => "primary-1" } as Role;
    const breakers = new Breakers(silent);
    const writer = registryWriter({ primary: primaryLink(config), logger: silent, database: null as unknown as _Db, role: replica, breakers });
    const beat = { id: "r1", region: "syd", role: "replica", host: "h", port: 1, version: "0", startedAt: new Date().toISOString(), inFlight: 0, cpuPercent: 0, memoryPercent: 0 } as const;
    expect(await writer.upsert(beat)).toBe("primary");
    dep.set({ kind: "fail", status: 502 });
    for (let i = 0; i < 2; i++) expect((await timed(() => writer.upsert(beat))).error).toBeInstanceOf(Error);
    const hits = dep.hits;
    expect((await timed(() => writer.upsert(beat))).error).toBeInstanceOf(CircuitOpenError);
    expect(dep.hits).toBe(hits);
    expect(breakers.list()).toEqual([expect.objectContaining({ dependency: "primary", state: "open", opened_total: 1 })]);
    dep.set({ kind: "ok" });
    breakers.close();
  });

  test("BREAKER_* settings: failures and seconds; a bad value stops the start naming the variable", () => {
    expect(breakerSettings("5/30")).toEqual({ threshold: 5, resetMs: 30_000, windowMs: 10_000 });
    expect(() => loadConfig(testEnv({ BREAKER_MAIL_API: "five" }))).toThrow("BREAKER_MAIL_API");
  });
});

describe("welcome mails while the mail API is down", () => {
  const prefix = testPrefix("breaker-jobs");
  let dep: FaultyServer;
  let inst: RunningInstance;
  beforeAll(async () => {
    dep = startFaultyServer();
    const env = {
      REDIS_URL,
      REDIS_PREFIX: prefix,
      MAIL_API_URL: dep.url,
      BREAKER_MAIL_API: "2/1",
      JOB_MAX_RETRIES: "1",
      JOB_BACKOFF_BASE_MS: "20",
      CRON_ENABLED: "false",
      METRICS_ENABLED: "true",
      METRICS_PORT: "0",
    };
    inst = await serveApp(env, undefined, { logger: silent });
  });
  afterAll(async () => {
    await inst?.stop();
    await dep.close();
    const r = await redisClient();
    await dropPrefix(r, prefix);
    await r.close();
  });

  test("are deferred, not failed, while the circuit is open; all are sent once it closes; state on /metrics and /health", async () => {
    dep.set({ kind: "fail", status: 503 });
    const users = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (i) => {
        const email = `down-${i}-${crypto.randomUUID().slice(0, 6)}@example.com`;
        const res = await fetch(`${inst.url}/api/v1/users`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ email, password: "correct-horse", full_name: "Down" }),
        });
        expect(res.status).toBe(201);
        return { email };
      }),
    );
    expect(users).toHaveLength(6);
    const metrics = () => fetch(inst.metricsUrl!).then((r) => r.text());
    await waitUntil(async () => (await metrics()).includes('circuit_state{dependency="mail_api"} 2'), 15_000, "the mail circuit to open");
    const health = await (await fetch(`${inst.url}/health`)).json();
    expect(health.status).toBe("degraded");
    expect(health.breakers.open).toContain("mail_api");
    expect((await fetch(`${inst.url}/health/ready`)).status).toBe(200);

    // With one retry allowed, six mails against a dead API would fail for good without the deferral: once the
    // circuit has refused more attempts than six jobs of two attempts each could make, none may have failed.
    const rejected = async () => Number(/^circuit_rejected_total\{dependency="mail_api"\} (\d+)$/m.exec(await metrics())?.[1] ?? 0);
    await waitUntil(async () => (await rejected()) > 6 * 2, 30_000, "more refusals than two attempts of each job");
    const ids = (await inst.deps.queue.listFailed(50)).filter((j) => j.type === "send_welcome_email");
    expect(ids).toHaveLength(0);

    dep.set({ kind: "ok" });
    await waitUntil(async () => (await metrics()).includes('circuit_state{dependency="mail_api"} 0'), 15_000, "the mail circuit to close");
    const m = await metrics();
    expect(m).toMatch(/circuit_rejected_total\{dependency="mail_api"\} [1-9]/);
    await waitUntil(async () => {
      const h = await (await fetch(`${inst.url}/health`)).json();
      return h.status === "ok";
    }, 5_000, "health back to ok");
    const sentTo = await waitUntil(() => {
      const to = new Set(dep.answered.map((b) => (b as { to: string }).to));
      return users.every((u) => to.has(u.email)) ? to : null;
    }, 15_000, "every welcome mail sent");
    expect(sentTo.size).toBe(6);
    const failed = (await inst.deps.queue.listFailed(50)).filter((j) => j.type === "send_welcome_email");
    expect(failed).toHaveLength(0);
  }, 60_000);
});

describe("the Redis L2's own breaker, reported beside the others", () => {
  test("opens after consecutive failures, refuses during the cooldown, one trial, closes on success; counted", async () => {
    const b = new L2Breaker(2, 150);
    const registry = new Breakers(createLogger("silent"));
    registry.observe("redis_l2", () => b.view());
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.view()).toMatchObject({ state: "closed", failures: 1, opened_total: 0 });
    b.failure();
    expect(b.view()).toMatchObject({ state: "open", failures: 2, opened_total: 1, rejected: 0 });
    expect(b.allow()).toBe(false);
    expect(registry.list()).toEqual([{ dependency: "redis_l2", state: "open", since: expect.any(String), failures: 2, rejected: 1, opened_total: 1, managed: false }]);
    await waitUntil(() => b.view().state !== "open", 5_000, "the cooldown to pass");
    expect(b.view().state).toBe("half_open");
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.view()).toMatchObject({ state: "closed", failures: 2, rejected: 2, opened_total: 1 });
    expect(b.allow()).toBe(true);
  });
});
