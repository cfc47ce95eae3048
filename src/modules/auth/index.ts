import { Elysia, t } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { authPlugin } from "../../platform/http/auth.ts";
import { problems } from "../../platform/http/models.ts";
import { LoginBody, LogoutBody, TokenResponse } from "./model.ts";
import { login, logout } from "./service.ts";

export function authModule(deps: AppDeps) {
  return new Elysia({ prefix: "/auth", tags: ["auth"] })
    .use(authPlugin(deps.auth))
    .post("/login", ({ body }) => login(deps, body.email, body.password), {
      body: LoginBody,
      response: { 200: TokenResponse, ...problems(400, 401, 413, 422, 429) },
      detail: { summary: "Exchange email and password for a bearer token (1 hour)" },
    })
    .post("/logout", async ({ body, principal, set }) => {
      await logout(deps, principal, body?.all === true);
      set.status = 204;
    }, {
      auth: "user",
      body: t.Optional(LogoutBody),
      response: { 204: t.Void(), ...problems(400, 401, 413, 422) },
      detail: {
        summary: "End the token's session, or with {all: true} every session of the caller",
        description: "Effective on every instance within a second; the body may be omitted.",
      },
    });
}
