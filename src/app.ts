// The composition root of the HTTP surface: createApp(deps) wires the platform and the feature modules.
// It never listens and opens nothing; src/index.ts (or a test) builds the deps.
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { requestContext } from "./platform/http/request-context.ts";
import { boundValidationErrors } from "./platform/http/validation-cost.ts";
import { adminModule } from "./modules/admin/index.ts";
import { authModule } from "./modules/auth/index.ts";
import { cacheModule } from "./modules/cache/index.ts";
import { clusterModule } from "./modules/cluster/index.ts";
import { dashboardModule } from "./modules/dashboard/index.ts";
import { healthModule } from "./modules/health/index.ts";
import { jobsModule } from "./modules/jobs/index.ts";
import { postsModule } from "./modules/posts/index.ts";
import { preferencesModule } from "./modules/preferences/index.ts";
import { usersModule } from "./modules/users/index.ts";
import pkg from "../package.json" with { type: "json" };

export const VERSION = pkg.version;

export function createApp(deps: AppDeps) {
  const api = new Elysia({ prefix: "/api/v1" })
    .use(authModule(deps))
    .use(usersModule(deps))
    .use(postsModule(deps))
    .use(preferencesModule(deps))
    .use(jobsModule(deps))
    .use(adminModule(deps));

  const app = new Elysia({ normalize: false })
    .use(requestContext({ logger: deps.logger, bodyLimit: deps.config.BODY_LIMIT_BYTES, instanceId: deps.config.INSTANCE_ID }))
    .use(
      openapi({
        path: "/swagger",
        specPath: "/swagger/json",
        provider: "swagger-ui",
        documentation: {
          info: {
            title: "neodyme-edge",
            version: VERSION,
            description: "User service: accounts, posts, preferences, login. Errors are application/problem+json.",
          },
          tags: [
            { name: "auth", description: "Login" },
            { name: "users", description: "Accounts" },
            { name: "posts", description: "Posts of a user" },
            { name: "preferences", description: "Preferences of a user" },
            { name: "health", description: "Liveness and readiness" },
            { name: "jobs", description: "Background jobs (admin)" },
            { name: "admin", description: "Bulk operations, cron and failed jobs (admin)" },
            { name: "cache", description: "Cache counters (admin)" },
          ],
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
        },
      }),
    )
    .use(dashboardModule(deps))
    .use(healthModule(deps))
    .use(cacheModule(deps))
    .use(clusterModule(deps))
    .use(api);
  boundValidationErrors(app.routes, (app as unknown as { definitions: { type: Record<string, unknown> } }).definitions.type);
  return app;
}

export type App = ReturnType<typeof createApp>;
