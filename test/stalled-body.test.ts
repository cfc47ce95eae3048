// A body that stops arriving (Content-Length: 100, 10 bytes sent, then nothing) is answered: a 408 problem+json
// with its request id, and the connection closed, before Bun's idle timeout would close it unanswered. The same
// for the write lane's way to the app, a declared write's fast answer, and a chunked body; each logged and measured
// from its arrival.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { connect } from "node:net";
import { serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { BODY_ARRIVAL_MS } from "../src/platform/http/json-body.ts";
import type { RunningInstance } from "../src/main/serve.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let served: RunningInstance;
const lines: string[] = [];
beforeAll(async () => {
  served = await serveApp({ LOG_LEVEL: "info", METRICS_ENABLED: "true", METRICS_PORT: "0" }, undefined, { logger: createLogger("info", {}, (l) => lines.push(l)) });
});
afterAll(() => served.stop());

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a request's head and the first bytes of its body on a keep-alive connection, then nothing; resolves with
 * the answer once the server closes the connection (fails if it has not within a generous bound).
 */
function stall(method: string, path: string, headers: Record<string, string>, sent: string): Promise<Answer> {
  const { hostname, port } = new URL(served.url);
  const head = [`${method} ${path} HTTP/1.1`, `host: ${hostname}:${port}`, "content-type: application/json", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => socket.write(head.join("\r\n") + "\r\n\r\n" + sent));
    socket.setTimeout(30_000, () => socket.destroy(new Error(`the connection of ${method} ${path} was neither answered nor closed`)));
    socket.on("data", (c) => chunks.push(Buffer.from(c)));
    socket.on("error", reject);
    socket.on("close", () => resolve(parseAnswer(Buffer.concat(chunks).toString("utf8"))));
  });
}

/** Parses a raw HTTP/1.1 answer (head and body) as `stall` resolves it. */
function parseAnswer(text: string): Answer {
  const end = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, Math.max(end, 0)).split("\r\n");
  const out: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    out[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine?.split(" ")[1]), headers: out, body: end < 0 ? "" : text.slice(end + 4) };
}

/**
 * Sends a request's head, then its body `perTick` bytes every `tickMs` (declared with Content-Length, or chunked
 * with one chunk per tick); resolves with the answer once the server closes the connection or, after the whole
 * body went, answers it in full.
 */
function trickle(path: string, body: string, perTick: number, tickMs: number, chunked = false): Promise<Answer> {
  const { hostname, port } = new URL(served.url);
  const framing = chunked ? "transfer-encoding: chunked" : `content-length: ${Buffer.byteLength(body)}`;
  const head = [`POST ${path} HTTP/1.1`, `host: ${hostname}:${port}`, "content-type: application/json", "connection: close", framing];
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let at = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const socket = connect(Number(port), hostname, () => {
      socket.write(head.join("\r\n") + "\r\n\r\n");
      timer = setInterval(() => {
        if (at >= body.length) return;
        const piece = body.slice(at, (at += perTick));
        socket.write(chunked ? `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n${at >= body.length ? "0\r\n\r\n" : ""}` : piece);
      }, tickMs);
    });
    socket.setTimeout(60_000, () => socket.destroy(new Error(`the connection of POST ${path} was neither answered nor closed`)));
    socket.on("data", (c) => {
      chunks.push(Buffer.from(c));
      clearInterval(timer); // answered: the rest of the body is of no use
    });
    // A write after the server closed the connection fails; the answer it sent before is what counts.
    socket.on("error", (err) => (chunks.length > 0 ? socket.destroy() : reject(err)));
    socket.on("close", () => {
      clearInterval(timer);
      resolve(parseAnswer(Buffer.concat(chunks).toString("utf8")));
    });
  });
}

async function user(): Promise<{ id: number; token: string }> {
  const email = `stall-${crypto.randomUUID()}@example.com`;
  const post = (path: string, body: unknown) =>
    fetch(served.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
  const created = await post("/api/v1/users", { email, password: "stall-password-1", full_name: "Stall" });
  const { access_token } = await post("/api/v1/auth/login", { email, password: "stall-password-1" });
  return { id: created.id, token: access_token };
}

test("a stalled body is answered 408 problem+json with its request id, and its connection closed", async () => {
  const u = await user();
  const answers = await Promise.all([
    // A registration: the write lane's way to the app (the body is awaited before the lane).
    stall("POST", "/api/v1/users", { "content-length": "100", "x-request-id": "stall-register" }, '{"email":"'),
    // A declared write answered in front of the app (its own body read).
    stall("PATCH", `/api/v1/users/${u.id}/preferences`, { "content-length": "100", authorization: `Bearer ${u.token}`, "x-request-id": "stall-prefs" }, '{"theme":"'),
    // A chunked body whose end never comes.
    stall("POST", "/api/v1/users", { "transfer-encoding": "chunked", "x-request-id": "stall-chunked" }, 'a\r\n{"email":"\r\n'),
    // With an Idempotency-Key (its body is read for the key's fingerprint too).
    stall("POST", "/api/v1/users", { "content-length": "100", "idempotency-key": "stall-1", "x-request-id": "stall-keyed" }, '{"email":"'),
    // The app's way for a write with an access level (its body awaited before the lane), keyed or not.
    stall("PATCH", `/api/v1/users/${u.id}`, { "content-length": "100", authorization: `Bearer ${u.token}`, "x-request-id": "stall-user" }, '{"full_name":"'),
    stall("PATCH", `/api/v1/users/${u.id}/preferences`, { "content-length": "100", authorization: `Bearer ${u.token}`, "idempotency-key": "stall-2", "x-request-id": "stall-prefs-keyed" }, '{"theme":"'),
    stall("POST", "/api/v1/auth/logout", { "content-length": "100", authorization: `Bearer ${u.token}`, "x-request-id": "stall-logout" }, '{"all":'),
  ]);
  const ids = ["stall-register", "stall-prefs", "stall-chunked", "stall-keyed", "stall-user", "stall-prefs-keyed", "stall-logout"];
  for (const [i, id] of ids.entries()) {
    const a = answers[i]!;
    expect({ id, status: a.status }).toEqual({ id, status: 408 });
    expect(a.headers["content-type"]).toBe("application/problem+json");
    expect(a.headers["x-request-id"]).toBe(id);
    expect(a.headers.connection).toBe("close");
    expect(JSON.parse(a.body)).toMatchObject({
      type: "https://neodyme-edge.dev/problems/request-timeout",
      title: "Request Timeout",
      status: 408,
      detail: expect.stringContaining("did not arrive"),
    });
  }
  // Each is logged and measured from its arrival: it took the whole BODY_ARRIVAL_MS, whichever way it went.
  const logged = lines.map((l) => JSON.parse(l)).filter((l) => ids.includes(l.request_id));
  expect(logged.map((l) => [l.request_id, l.status]).sort()).toEqual(ids.map((id) => [id, 408]).sort());
  for (const l of logged) expect({ id: l.request_id, long: l.duration_ms >= BODY_ARRIVAL_MS * 0.9 }).toEqual({ id: l.request_id, long: true });
  const metrics = await (await fetch(served.metricsUrl!)).text();
  const under5s = metrics.split("\n").filter((l) => l.startsWith("http_request_duration_seconds_bucket") && l.includes('status="408"') && l.includes('le="5"'));
  expect(under5s.length).toBeGreaterThanOrEqual(4);
  for (const l of under5s) expect(l).toEndWith(" 0");
  // The instance goes on answering.
  expect((await fetch(served.url + "/health/live")).status).toBe(200);
});

test("the 404 or 405 of a write no route answers comes at once, without waiting for a stalled body, and closes the connection", async () => {
  const sent = Date.now();
  const answers = await Promise.all([
    stall("PUT", "/api/v1/users/2", { "content-length": "100", "x-request-id": "stall-405" }, "{"),
    stall("POST", "/api/v1/nope", { "content-length": "100", "x-request-id": "stall-404" }, "{"),
    stall("POST", "/api/v1/nope", { "transfer-encoding": "chunked", "x-request-id": "stall-404-chunked" }, "1\r\n{\r\n"),
  ]);
  // Well within the time a body may take to arrive (BODY_ARRIVAL_MS), after which a 408 would come instead.
  expect(Date.now() - sent).toBeLessThan(BODY_ARRIVAL_MS / 2);
  expect(answers.map((a) => [a.headers["x-request-id"], a.status, a.headers["content-type"], a.headers.connection])).toEqual([
    ["stall-405", 405, "application/problem+json", "close"],
    ["stall-404", 404, "application/problem+json", "close"],
    ["stall-404-chunked", 404, "application/problem+json", "close"],
  ]);
  expect(answers[0]!.headers.allow).toBe("GET, HEAD, PATCH, DELETE, OPTIONS");
});

test("a body's deadline grows with its length: a slow upload of a large body is answered, one slower than the minimum rate is 408", async () => {
  // 30,000 bytes: the grace plus its length at the minimum rate is well over the grace alone.
  const body = JSON.stringify({ email: `${"x".repeat(29_900)}@example.com`, password: "trickle-password-1", full_name: "Trickle" });
  expect(Buffer.byteLength(body)).toBeGreaterThan(29_000);
  const [declared, chunked, tooSlow, stalled] = await Promise.all([
    // About 2.5 KB/s: the whole body takes about 12 s, past the grace alone.
    trickle("/api/v1/users", body, 1250, 500),
    trickle("/api/v1/users", body, 1250, 500, true),
    // About 1 KB/s: slower than the minimum rate, so refused before its end.
    trickle("/api/v1/users", body, 500, 500),
    // Stalled after its first bytes: answered at its (longer) deadline, before Bun would close it unanswered.
    stall("POST", "/api/v1/users", { "content-length": "30000", "x-request-id": "stall-large" }, '{"email":"'),
  ]);
  // The slow bodies arrived and were judged on what they hold (an email this long is not one).
  expect([declared.status, chunked.status]).toEqual([422, 422]);
  expect(tooSlow.status).toBe(408);
  expect(tooSlow.headers.connection).toBe("close");
  expect(JSON.parse(tooSlow.body).detail).toContain(`a body of ${Buffer.byteLength(body)} bytes is given`);
  expect([stalled.status, stalled.headers["x-request-id"], stalled.headers.connection]).toEqual([408, "stall-large", "close"]);
}, 60_000);
