import { Elysia, t } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems, responseHeaders } from "../../platform/http/models.ts";
import { LoginBody, LogoutBody, TokenResponse } from "./model.ts";
import { login, logout } from "./service.ts";

export function authModule(deps: AppDeps) {
  return new Elysia({ prefix: "/auth", tags: ["auth"] })
    .use(authPlugin(deps.auth))
    .post("/login", ({ body }) => login(deps, body.email, body.password), {
      body: LoginBody,
      response: { 200: TokenResponse, ...problems(401, 429) },
      detail: {
        operationId: "login",
        summary: "Exchange email and password for a bearer token (1 hour)",
        responses: {
          401: { description: "Unknown email or wrong password (the answer does not say which)" },
          429: { description: "Too many failed attempts for this account; retry after Retry-After seconds", headers: responseHeaders("retry-after") },
        },
      },
    })
    .post("/logout", async ({ body, principal, set }) => {
      await logout(deps, principal, body?.all === true);
      set.status = 204;
    }, {
      auth: "user",
      body: t.Optional(LogoutBody),
      response: { 204: t.Void(), ...problems(401) },
      detail: {
        operationId: "logout",
        summary: "End the token's session, or with {all: true} every session of the caller",
        description: "Effective on every instance within a second; the body may be omitted.",
      },
    });
}
