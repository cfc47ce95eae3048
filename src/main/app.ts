// The HTTP surface: createApp(deps) wires the platform plugins and the features' routes.
// It never listens and opens nothing; buildDeps (platform.ts) or a test builds the deps.
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { appFeatures } from "./features.ts";
import type { Feature } from "../platform/feature.ts";
import { requestContext, requestObserver, type RequestContextOptions } from "../platform/http/request-context.ts";
import { headerPolicy } from "../platform/http/headers.ts";
import { headerSettings } from "./options.ts";
import { rateLimitPlugin, ratePolicies } from "../platform/http/rate-limits.ts";
import { openApiDocument } from "../platform/http/openapi.ts";
import { NOT_REPLAYED, openApiOptions } from "./openapi.ts";
import { callerScope, dropIdempotencyWhereMoot, idempotencyPlugin } from "../platform/http/idempotency.ts";
import { bodyValueCaps, boundValidationErrors, optionalBodyRouteKeys } from "../platform/http/validation-cost.ts";
import { JSON_MAX_VALUES } from "../platform/http/json-depth.ts";
import { allowedMethods } from "../platform/http/allowed-methods.ts";
import { routeAuthLevels } from "../platform/http/auth.ts";
import type { AuthLevel } from "../platform/http/access.ts";
import { docsModule } from "../modules/docs/index.ts";
import pkg from "../../package.json" with { type: "json" };

export const VERSION = pkg.version;

/** The app over `deps`: the platform's plugins, then each feature's routes in the list's order (features.ts). */
export function createApp(deps: AppDeps, features: readonly Feature[] = appFeatures(deps), opts: Pick<RequestContextOptions, "unserved"> = {}) {
  const api = new Elysia({ prefix: "/api/v1" });
  for (const feature of features) if (feature.routes && feature.mount !== "site") api.use(feature.routes);

  const valueCaps = new Map<string, number>();
  const bodySchemas = new Map<string, unknown>();
  // The route table labels what is answered before routing; filled once the app is complete.
  let routes: readonly { method: string; path: string }[] = [];
  const authLevels = new Map<string, AuthLevel>();
  const optionalBodies = new Set<string>();
  let allowed: ((pathname: string) => string | undefined) | undefined;
  const app = new Elysia({ normalize: false })
    .use(
      requestContext({
        logger: deps.logger,
        observer: requestObserver(deps.logger, { metrics: deps.httpMetrics, routes: () => routes }),
        bodyLimit: deps.config.BODY_LIMIT_BYTES,
        instanceId: deps.config.INSTANCE_ID,
        headers: headerPolicy(headerSettings(deps.config)),
        valueCaps,
        bodySchemas,
        auth: { levels: authLevels, admit: (request, level, pathId) => deps.auth.admit(request, level, pathId) },
        allowed: (pathname) => (allowed ??= allowedMethods(routes))(pathname),
        optionalBodies,
        unserved: opts.unserved,
      }),
    )
    .use(rateLimitPlugin({ limiter: deps.rateLimiter, auth: deps.auth, policies: ratePolicies(deps.config), clientIpHeader: deps.config.CLIENT_IP_HEADER }))
    .use(
      idempotencyPlugin({
        database: deps.database,
        role: deps.role,
        bodyLimit: deps.config.BODY_LIMIT_BYTES,
        logger: deps.logger,
        scope: (request) => callerScope(deps.auth, request, deps.config.CLIENT_IP_HEADER),
        exempt: NOT_REPLAYED,
      }),
    );
  // The site's own routes (health, dashboard, …) come before the API, as the features list them.
  for (const feature of features) if (feature.routes && feature.mount === "site") app.use(feature.routes);
  app.use(api);
  const full = app.use(docsModule({ title: "neodyme-edge", document: () => openApiDocument(app, openApiOptions(VERSION)) }));
  const models = modelsOf(full);
  boundValidationErrors(full.routes, models);
  dropIdempotencyWhereMoot(full.routes);
  for (const [route, cap] of bodyValueCaps(full.routes, models, JSON_MAX_VALUES)) valueCaps.set(route, cap);
  for (const r of full.routes) {
    const body = (r.hooks as { body?: unknown } | undefined)?.body;
    if (body !== undefined) bodySchemas.set(`${r.method} ${r.path}`, typeof body === "string" ? models[body] : body);
  }
  routes = full.routes;
  for (const [route, level] of routeAuthLevels(full.routes)) authLevels.set(route, level);
  for (const route of optionalBodyRouteKeys(full.routes, models)) optionalBodies.add(route);
  return full;
}

export type App = ReturnType<typeof createApp>;

/** The named models (`.model()`) a route's schema may refer to by name. */
export const modelsOf = (app: object): Record<string, unknown> => (app as { definitions: { type: Record<string, unknown> } }).definitions.type;

/**
 * Compiles every route's handler and validators (one per body, query and response status) now. Elysia does it
 * on a route's first request, which then holds the event loop for milliseconds: the first burst to a route,
 * hostile or not, would queue every other request behind that compilation. Call it on the finished app
 * (createApp has bounded the validation errors by then; the validators are compiled from those schemas).
 */
export function compileRoutes(app: { routes: readonly unknown[]; compile(): unknown }): void {
  for (const route of app.routes) (route as { compile?: () => unknown }).compile?.();
  app.compile();
}
