// A served instance for comparing a fast answer (fast-read.ts) with the app's answer to the same request: its
// metrics, what must be equal both ways, and the request header that sends a request the app's way; and the
// in-memory sessions a fast answer driven directly authenticates against.
import { expect } from "bun:test";
import { rmSync } from "node:fs";
import { MemoryBus } from "../../src/platform/cache/bus.ts";
import type { Database } from "../../src/platform/db/client.ts";
import { Auth } from "../../src/platform/http/auth.ts";
import { Sessions } from "../../src/platform/http/sessions.ts";
import { createLogger } from "../../src/platform/observability/logger.ts";
import { REDIS_URL, serveApp, tempDir } from "../helpers.ts";
import { startCache, TEST_L1 } from "../fixtures/caches.ts";
import type { RawResponse } from "./raw-http.ts";

/** The app's way for the same request: a declared body (Content-Length: 0) is one of the things a fast answer declines. */
export const APP_WAY = { "content-length": "0" };

/** An instance with Redis, metrics and info logs (into `lines`), and one user with a post, logged in. */
export async function parityInstance(env: Record<string, string>, lines: string[]) {
  const dir = tempDir("fast-");
  const instance = await serveApp({ REDIS_URL, METRICS_ENABLED: "true", METRICS_PORT: "0", LOG_LEVEL: "info", ...env }, dir, {
    logger: createLogger("info", {}, (l) => lines.push(l)),
  });
  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${instance.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const login = async (email: string, password: string) =>
    ((await (await post("/api/v1/auth/login", { email, password })).json()) as { access_token: string }).access_token;
  const created = (await (await post("/api/v1/users", { email: "fast@example.com", password: "password-1", full_name: "Fast" })).json()) as { id: number };
  const access_token = await login("fast@example.com", "password-1");
  await post(`/api/v1/users/${created.id}/posts`, { title: "hello", content: "world" }, access_token);
  const metrics = async () => await (await fetch(instance.metricsUrl!)).text();
  const stop = async () => {
    await instance.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { instance, id: created.id, token: access_token, login, metrics, stop };
}

export const fastAnswers = (text: string) => Number(/^http_fast_path_answers_total (\d+)$/m.exec(text)?.[1]);

export const requestsCounted = (text: string, route: string, status: number, method = "GET") =>
  Number(new RegExp(`^http_requests_total\\{method="${method}",route="${route.replace(/[/:]/g, "\\$&")}",status="${status}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);

/** What must be equal both ways: the request's own id and the remaining count of the rate limit differ by design. */
export const comparable = (r: RawResponse) => {
  const { date: _d, "x-request-id": _r, ratelimit, ...headers } = r.headers;
  return { status: r.status, body: r.body, headers, ratelimit: ratelimit?.replace(/;r=\d+/, ";r=N") };
};

export const rateLimited = (text: string) => Number(/^rate_limited_total (\d+)$/m.exec(text)?.[1]);

/**
 * Three reads under a read limit of 3, each a fast answer counting toward the limit once; the fast answers
 * counted before them (the set-up's post was one too, a declared write).
 */
export async function expectReadLimitSpent(get: () => Promise<RawResponse>, metrics: () => Promise<string>): Promise<number> {
  const before = fastAnswers(await metrics());
  const answers = [await get(), await get(), await get()];
  expect(answers.map((r) => [r.status, r.headers.ratelimit])).toEqual([
    [200, '"read";r=2;t=20'],
    [200, '"read";r=1;t=40'],
    [200, '"read";r=0;t=60'],
  ]);
  expect(fastAnswers(await metrics())).toBe(before + 3);
  return before;
}

/** A request refused by the rate limit, answered the same both ways. */
export function expectLimitedAlike(fastWay: RawResponse, appWay: RawResponse, compare: (r: RawResponse) => unknown = comparable) {
  expect(fastWay.status).toBe(429);
  expect(fastWay.headers["retry-after"]).toBeDefined();
  expect(compare(fastWay)).toEqual(compare(appWay));
}

/** The one log line of request `rid`, without what differs by nature (time, duration, id). */
export const requestLine = (lines: string[], rid: string) => {
  const mine = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request" && l.request_id === rid);
  expect({ rid, n: mine.length }).toEqual({ rid, n: 1 });
  const { time: _t, duration_ms: _d, request_id: _r, ...rest } = mine[0];
  return rest;
};

/**
 * Sessions read from memory (an L1-only cache, which the test closes) holding session "s" of user 3, and the
 * auth over them; a session not there is loaded, and their database has none.
 */
export async function memorySessions(secret: string, instanceId: string) {
  const cache = await startCache([], {
    instanceId,
    l1: { ...TEST_L1, maxBytes: 1 << 20, maxEntryBytes: 1 << 16 },
    l2: null,
    bus: new MemoryBus(),
  });
  const auth = new Auth(secret, new Sessions(undefined as unknown as Database, cache));
  await cache.getOrSet("session:s", async () => ({ userId: 3, isAdmin: false }), { tags: ["sessions:3"] });
  return { cache, auth };
}
