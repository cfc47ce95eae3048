// Serves an instance: builds its dependencies (platform.ts) and app, then Bun.serve with the cached-read and
// declared-write fast routes, the metrics and /internal listeners, the heartbeat, and a graceful stop that takes
// it all down in reverse order. src/index.ts calls it for `bun run start`; tests and the cluster runner call it too.
import type { Server } from "bun";
import { compileRoutes, createApp, modelsOf, VERSION } from "./app.ts";
import { warmRefusals } from "../platform/http/warm-refusals.ts";
import type { Config } from "../config.ts";
import type { AppDeps } from "./deps.ts";
import { buildDeps } from "./platform.ts";
import { headerSettings, heartbeatOptions, localHost } from "./options.ts";
import { rememberSocketAddress } from "../platform/http/client-ip.ts";
import { abuseMetrics, carryDecision, LOGIN_PATH, ratePolicies, REGISTER_PATH } from "../platform/http/rate-limits.ts";
import { inTurn, writeLane, writeLaneMetrics } from "../platform/http/write-lane.ts";
import { headerPolicy, putInto } from "../platform/http/headers.ts";
import { problem, problemResponse } from "../platform/http/errors.ts";
import { fastReads } from "../platform/http/fast-read.ts";
import { bodyArrived, fastWrites, type FastWrite } from "../platform/http/fast-write.ts";
import { routeAuthLevels } from "../platform/http/auth.ts";
import type { AuthLevel } from "../platform/http/access.ts";
import { bodyIdleSeconds, declaresBody, IDLE_TIMEOUT_S } from "../platform/http/json-body.ts";
import { allowedMethods, allows } from "../platform/http/allowed-methods.ts";
import { rememberArrival, requestObserver } from "../platform/http/request-context.ts";
import { isInternalUrl, startInternalListener } from "../platform/cluster/internal-listener.ts";
import { FINAL_CLOSE_MS, remainingMs, within } from "../platform/lifecycle/shutdown.ts";
import { startHeartbeat } from "../platform/cluster/registry.ts";
import { metricsRenderer, pathnameOf, startMetricsServer } from "../platform/observability/metrics.ts";
import { renderReplicaLag, replicaLagSeconds } from "../platform/cluster/lag.ts";
import { createLogger, type Logger } from "../platform/observability/logger.ts";
import { startHistorySampler } from "../platform/observability/history.ts";
import { queueTypeMetrics } from "../platform/observability/ops-metrics.ts";
import { runStartup } from "./features.ts";
import { Opened } from "../platform/lifecycle/startup.ts";

export interface RunningInstance {
  deps: AppDeps;
  server: Server<undefined>;
  url: string;
  /** The Prometheus listener's URL, null when METRICS_ENABLED is false. */
  metricsUrl: string | null;
  /** The private /internal listener's URL, null without INTERNAL_TOKEN. */
  internalUrl: string | null;
  /** Graceful: stop accepting, let in-flight requests finish (bounded), then close everything. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

/**
 * Elysia looks for the path from index 11 of the URL on (`url.indexOf("/", 11)`), so a Host of three characters
 * or fewer ("http://api/users") hides the path and every route answers 404. Such requests get a URL with a
 * longer host; the host is not used for anything else.
 */
export function withRoutableUrl(request: Request): Request {
  const url = request.url;
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  if (slash < 0 || slash >= 11) return request;
  return new Request("http://localhost" + url.slice(slash), request);
}

export async function startInstance(config: Config, opts: StartOptions = {}): Promise<RunningInstance> {
  const logger = opts.logger ?? createLogger(config.LOG_LEVEL, { instance: config.INSTANCE_ID, region: config.FLY_REGION });
  // What this start opens, closed last first if a later part fails (startup.ts); the graceful stop is below.
  const opened = new Opened((part, err) => logger.warn("closing failed", { part, error: err instanceof Error ? err.message : String(err) }));
  const built = await opened.open("dependencies", () => buildDeps(config, logger), (b) => b.close());
  const { deps, features, requests, close, closeBackground, start: startBackground } = built;
  // Said by a serving instance only: a command built on the same deps (users-cli.ts) serves nothing.
  if (!deps.redis) logger.warn("REDIS_URL is not set: single-instance mode (in-process cache, queue and rate limits; jobs are not durable)");
  // /internal/* asked on the public port: the app answers it as a path it does not know (request-context.ts).
  const unserved = new WeakSet<Request>();
  const app = await opened.open("app", () => createApp(deps, features, { unserved: (r) => unserved.has(r) }));
  await opened.open("compiling the app's routes", () => compileRoutes(app));
  // So that the first hostile burst after a start does not run the refusal code uncompiled (warm-refusals.ts).
  await opened.open("warming the refusals", () => warmRefusals(app.routes, modelsOf(app), config.BODY_LIMIT_BYTES));
  const httpMetrics = deps.httpMetrics;
  // The app's requests are observed inside it (request-context.ts); the same observer for the fast answers.
  const observer = requestObserver(logger, { metrics: httpMetrics });
  // The features' chores before listening (the login's stand-in hash, cache warming bounded by CACHE_WARM_TIMEOUT_MS).
  await opened.open("features' start-up chores before serving", () => runStartup(features, "serve"));
  // The cached reads (cached-read.ts) answered before Elysia, from their declarations (see fast-read.ts).
  const { read: readLimit, write: writeLimit } = ratePolicies(config);
  const headers = headerPolicy(headerSettings(config));
  const fast = await opened.open("the cached reads' fast answers", () =>
    fastReads(app.routes, {
      auth: deps.auth,
      headers,
      rateLimit: readLimit ? { limiter: deps.rateLimiter, policy: readLimit } : undefined,
      observe: (route) => observer.answers("GET", route),
    }),
  );
  // The declared writes (declared-write.ts) answered before Elysia too, in the write lane (see fast-write.ts).
  const fastWriting = await opened.open("the declared writes' fast answers", () =>
    fastWrites(app.routes, {
      auth: deps.auth,
      headers,
      rateLimit: writeLimit ? { limiter: deps.rateLimiter, policy: writeLimit } : undefined,
      bodyLimit: config.BODY_LIMIT_BYTES,
      isPrimary: () => deps.role.isPrimary(),
      observer,
      logger,
    }),
  );
  const allowedOf = allowedMethods(app.routes);
  const viaApp = async (request: Request, start: number, address?: string): Promise<Response> => {
    requests.inFlight++;
    try {
      const routable = withRoutableUrl(request);
      if (routable !== request) {
        carryDecision(request, routable);
        deps.auth.carry(request, routable);
      }
      rememberSocketAddress(routable, address);
      rememberArrival(routable, start);
      return await app.handle(routable);
    } catch (err) {
      // Escaped the app (it answers its own errors): Bun's error handler answers; observed here.
      observer.observe(request.method, undefined, pathnameOf(request.url), 500, performance.now() - start, undefined);
      throw err;
    } finally {
      requests.inFlight--;
    }
  };
  // Writes take turns (write-lane.ts); login and registration spend their time hashing, off the event loop.
  const lane = writeLane(config.WRITE_CONCURRENCY, config.WRITE_LANE_WAIT_MS, new Set([`POST ${LOGIN_PATH}`, `POST ${REGISTER_PATH}`]));
  // A write going the app's way: its body is read before it takes a turn (fast-write.ts bodyArrived), so a client
  // sending it slowly holds no turn; Elysia then parses the copy holding it.
  const viaLane = (request: Request, start: number, address?: string): Promise<Response> => {
    if (!lane.applies(request.method, request.url)) return viaApp(request, start, address);
    // A method and path no route answers: the app's 404 or 405 needs none of the body, so none is waited for.
    const allow = allowedOf(pathnameOf(request.url));
    if (allow === undefined || !allows(allow, request.method)) return closedIfUnread(request, viaApp(request, start, address));
    return loading(bodyArrived(request, config.BODY_LIMIT_BYTES)).then((arrived) => {
      if (arrived !== request) deps.auth.carry(request, arrived);
      return inLane(arrived, () => viaApp(arrived, start, address));
    });
  };
  const inLane = (request: Request, answer: () => Promise<Response>): Promise<Response> => {
    if (!lane.applies(request.method, request.url)) return answer();
    const turn = lane.enter();
    const run = (leave: () => void) => inTurn(leave, answer);
    if (typeof turn === "function") return run(turn);
    // A write waiting for its turn is in flight too (the heartbeat's load, the shutdown's count).
    requests.inFlight++;
    return turn.then((leave) => {
      requests.inFlight--;
      return run(leave);
    });
  };
  // A fast answer that waits for its loader (or its write) is in flight like the app's requests.
  const loading = async <T>(answer: Promise<T>): Promise<T> => {
    requests.inFlight++;
    try {
      return await answer;
    } finally {
      requests.inFlight--;
    }
  };
  // While stopping, every answer closes its connection: a keep-alive client reconnects (with reusePort, to a
  // sibling) instead of sending its next request on a socket this instance is about to close.
  let draining = false;
  const closing = (r: Response): Response => {
    r.headers.set("connection", "close");
    return r;
  };
  // An answer given without reading the body its request declared (a 404 or 405) closes its connection: the rest
  // of that body may still be on its way, or never come.
  const closedIfUnread = (request: Request, answer: Promise<Response>): Promise<Response> =>
    declaresBody(request.headers) ? answer.then((r) => (request.bodyUsed ? r : closing(r))) : answer;
  // A declared write's fast answer: read and checked before the lane (fast-write.ts), its write run in a turn;
  // what it declines goes the app's way, through the lane, except a caller it found refused: the app answers its
  // 401 or 403 from that decision, with no turn and without reading the body.
  const declined = (r: Request, start: number, address?: string) => (deps.auth.refused(r) ? viaApp(r, start, address) : viaLane(r, start, address));
  // The app's other writes with an access level: the app's auth decision (Auth.admit) before the body is waited
  // for, so a caller it refuses gets its 401 or 403 with no turn and its body unread; one it admits is decided
  // again in its turn, once the body is there (the auth macro's Auth.readmit). A failure to decide (the session's
  // store) goes the usual way: the app meets it.
  // A body that may take longer to arrive than the idle timeout allows: the connection waits for its deadline.
  const bodyTime = (request: Request, server: Server<undefined>) => {
    const seconds = bodyIdleSeconds(request, config.BODY_LIMIT_BYTES);
    if (seconds !== undefined) server.timeout(request, seconds);
  };
  const admittedWrite = (level: AuthLevel) => (request: Bun.BunRequest<string>, server: Server<undefined>) => {
    const start = performance.now();
    bodyTime(request, server);
    const address = server.requestIP(request)?.address;
    const answer = loading(deps.auth.admit(request, level, request.params.id).catch(() => undefined)).then(() => declined(request, start, address));
    return draining ? answer.then(closing) : answer;
  };
  const admittedWrites = new Map<string, Map<string, AuthLevel>>();
  for (const [key, level] of routeAuthLevels(app.routes)) {
    const [method, path] = key.split(" ", 2) as [string, string];
    if (!lane.applies(method, "http://x" + path) || path.includes("*") || fastWriting.get(path)?.has(method)) continue;
    const methods = admittedWrites.get(path) ?? new Map<string, AuthLevel>();
    methods.set(method, level);
    admittedWrites.set(path, methods);
  }
  const fastWriteRoute = (write: FastWrite) => (request: Bun.BunRequest<string>, server: Server<undefined>) => {
    const start = performance.now();
    bodyTime(request, server);
    const answer = loading(write(request, request.params, start)).then((r) =>
      r instanceof Response ? r : r instanceof Request ? declined(r, start, server.requestIP(request)?.address) : inLane(request, () => loading(r())),
    );
    return draining ? answer.then(closing) : answer;
  };
  // A cached read's GET: its fast answer, or the app's.
  const readRoute = (path: string) => {
    const read = fast.get(path);
    if (read === undefined) return {};
    return {
      GET: (request: Bun.BunRequest<string>, server: Server<undefined>) => {
        const start = performance.now();
        // The socket address is only looked up for the app's way (an object per call on the hot path).
        const fastAnswer = read(request, request.params, start);
        const answer =
          fastAnswer === undefined
            ? viaApp(request, start, server.requestIP(request)?.address)
            : fastAnswer instanceof Response
              ? fastAnswer
              : loading(fastAnswer).then((r) => r ?? viaApp(request, start, server.requestIP(request)?.address));
        return draining ? Promise.resolve(answer).then(closing) : answer;
      },
    };
  };
  // The private listeners before the public one: a port of theirs that is taken fails the start before the
  // public port accepts anything.
  const local = localHost(config);
  const metricsServer = httpMetrics
    ? await opened.open(`metrics listener on ${config.HOST}:${config.METRICS_PORT}`, () => startMetricsServer({
        port: config.METRICS_PORT,
        hostname: config.HOST,
        render: metricsRenderer(httpMetrics, {
          instanceId: config.INSTANCE_ID,
          region: config.FLY_REGION,
          version: VERSION,
          inFlight: deps.inFlight,
          isPrimary: () => deps.role.isPrimary(),
          cacheStats: () => deps.cache.stats(),
          queueStats: () => deps.queue.stats(),
          breakers: () => deps.breakers.list(),
          extra: [(out) => deps.opsMetrics.render(out), queueTypeMetrics(() => deps.queue.countsByType()), (out) => renderReplicaLag(out, { database: deps.database, role: deps.role }, config.HEARTBEAT_INTERVAL), abuseMetrics(deps.rateLimiter, deps.hashing), writeLaneMetrics(lane)],
        }),
      }), (s) => s.stop(true))
    : null;
  const metricsUrl = metricsServer ? `http://${local}:${metricsServer.port}/metrics` : null;
  // The replica-to-primary routes exist only with INTERNAL_TOKEN; so does their private listener.
  const internalServer = config.INTERNAL_TOKEN
    ? await opened.open(`internal listener on ${config.HOST}:${config.INTERNAL_PORT}`, () => startInternalListener({ port: config.INTERNAL_PORT, hostname: config.HOST, reusePort: config.REUSE_PORT, handle: (r) => viaApp(r, performance.now()) }), (s) => s.stop(true))
    : null;
  const internalUrl = internalServer ? `http://${local}:${internalServer.port}` : null;
  // Marked as the app will see it (viaApp copies a request only for its URL, which withRoutableUrl already gave).
  const unservedHere = (request: Request): Request => {
    const routable = withRoutableUrl(request);
    unserved.add(routable);
    return routable;
  };
  const routePaths = new Set([...fast.keys(), ...fastWriting.keys(), ...admittedWrites.keys()]);
  const server = await opened.open(`HTTP listener on ${config.HOST}:${config.PORT}`, () => Bun.serve({
    port: config.PORT,
    hostname: config.HOST,
    reusePort: config.REUSE_PORT,
    // The app answers 413 itself, as problem+json with x-request-id: a declared Content-Length over
    // BODY_LIMIT_BYTES before reading anything, a chunked body as soon as it passes the limit (it never holds
    // more). Bun's own limit, which answers a bare 413, is only the last line against absurd declarations.
    maxRequestBodySize: Math.max(128 * 1024 * 1024, config.BODY_LIMIT_BYTES * 2),
    // Seconds before Bun closes a connection unanswered: longer than a small body may take to arrive, so a
    // stalled one gets the app's 408 first; a larger body's request gets more (bodyTime, json-body.ts).
    idleTimeout: IDLE_TIMEOUT_S,
    // The cached reads' GETs and the declared writes' POSTs and PATCHes go through Bun's router to their fast
    // answers, which hand what they decline to the app; Bun sends the routes' other methods to `fetch`.
    routes: Object.fromEntries(
      [...routePaths].map((path) => [
        path,
        {
          ...Object.fromEntries([...(admittedWrites.get(path) ?? [])].map(([method, level]) => [method, admittedWrite(level)])),
          ...Object.fromEntries([...(fastWriting.get(path) ?? [])].map(([method, write]) => [method, fastWriteRoute(write)])),
          ...readRoute(path),
        },
      ]),
    ),
    // Whatever escapes the app and the fast path (they answer their own errors): a problem, with a request id,
    // logged. Bun answers its own parser errors (431, 400 bad framing, 505, 413 over maxRequestBodySize) without
    // calling this; docs/security.md lists them.
    error: (err) => {
      const id = crypto.randomUUID();
      logger.error("unhandled error outside the app", { request_id: id, error: err instanceof Error ? err.message : String(err) });
      const answerHeaders: Record<string, string> = { "x-request-id": id };
      headers.decorate(new Request("http://localhost/"), putInto(answerHeaders));
      return problemResponse(problem(500, "Something went wrong on our side; the request id identifies it in our logs"), answerHeaders);
    },
    fetch: (request, server) => {
      bodyTime(request, server);
      const answer = isInternalUrl(request.url) ? viaApp(unservedHere(request), performance.now()) : viaLane(request, performance.now(), server.requestIP(request)?.address);
      return draining ? Promise.resolve(answer).then(closing) : answer;
    },
  }), (s) => s.stop(true));
  const url = `http://${local}:${server.port}`;
  const sampler = httpMetrics
    ? await opened.open("history sampler", () => startHistorySampler(deps.history, { http: httpMetrics, cache: () => deps.cache.stats(), queue: () => deps.queue.stats() }), (s) => s.stop())
    : null;
  const heartbeat = await opened.open("heartbeat", () => startHeartbeat(
    { primary: deps.primary, logger, database: deps.database, role: deps.role, breakers: deps.breakers },
    {
      ...heartbeatOptions(config, { port: server.port ?? config.PORT, inFlight: deps.inFlight }),
      // Each beat carries this instance's replica lag and last hour, so every instance can show the whole cluster.
      replicaLag: () => replicaLagSeconds(deps),
      historySummary: () => deps.history.minutes.encode(),
    },
  ), (h) => h.stop());
  // On the primary the row is written locally, so the instance is in the table once started. A replica's first
  // beat goes over the network to the primary: never hold the start (and the signal handlers) on it.
  if (deps.role.isPrimary()) await opened.open("registering in the instance table", () => heartbeat.registered);
  await opened.open("background work", startBackground);
  // Last: a start that failed never said it was listening.
  logger.info("listening", { url, port: server.port, metrics_url: metricsUrl, internal_url: internalUrl, role: deps.role.isPrimary() ? "primary" : "replica" });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // One deadline for the drain, the job worker and cron, which stop side by side (see lifecycle/shutdown.ts).
      const deadline = performance.now() + config.SHUTDOWN_TIMEOUT_MS;
      logger.info("shutting down", { in_flight: deps.inFlight() });
      const deregistered = heartbeat.stop();
      const background = closeBackground();
      draining = true;
      await Bun.sleep(Math.min(config.SHUTDOWN_DRAIN_MS, remainingMs(deadline) / 2));
      const drained = Promise.all([server.stop(false), internalServer?.stop(false)]);
      if (!(await within(drained, remainingMs(deadline)))) {
        logger.warn("in-flight requests did not finish in time; closing their connections", { in_flight: deps.inFlight() });
        await Promise.all([server.stop(true), internalServer?.stop(true)]);
      }
      if (!(await within(Promise.all([deregistered, background]), remainingMs(deadline)))) {
        logger.warn("background work did not stop by the shutdown deadline; its jobs return to the queue after the visibility timeout");
      }
      sampler?.stop();
      metricsServer?.stop(true);
      await within(close(), FINAL_CLOSE_MS);
      logger.info("stopped");
    })());
  return { deps, server, url, metricsUrl, internalUrl, stop };
}
