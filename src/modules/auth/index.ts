import { Elysia, t } from "elysia";
import { authPlugin } from "../../platform/http/auth.ts";
import { clientKeyOf } from "../../platform/http/client-ip.ts";
import { problems, responseHeaders } from "../../platform/http/models.ts";
import { LoginBody, LogoutBody, TokenResponse } from "./model.ts";
import type { Feature } from "../../platform/feature.ts";
import { login, logout, warmLogin, type AuthDeps } from "./service.ts";

export function authModule(deps: AuthDeps) {
  return new Elysia({ prefix: "/auth", tags: ["auth"] })
    .use(authPlugin(deps.auth))
    .post("/login", ({ body, request }) => login(deps, body.email, body.password, clientKeyOf(request, deps.config.CLIENT_IP_HEADER)), {
      body: LoginBody,
      response: { 200: TokenResponse, ...problems(401, 429, 503) },
      detail: {
        operationId: "login",
        summary: "Exchange email and password for a bearer token (1 hour)",
        responses: {
          401: { description: "Unknown email or wrong password (the answer does not say which)" },
          429: {
            description: "Too many attempts from this address, or failed ones for this account; retry after Retry-After seconds",
            headers: responseHeaders("retry-after"),
          },
          503: { description: "Too many password checks at once on this instance; retry after Retry-After seconds", headers: responseHeaders("retry-after") },
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

/** Login and logout; at start, the stand-in hash that an unknown email is checked against. */
export function authFeature(slice: AuthDeps): Feature {
  return {
    name: "auth",
    routes: authModule(slice),
    startup: [{ name: "warm_login", when: "serve", detached: true, run: warmLogin }],
  };
}
