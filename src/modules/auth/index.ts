import { Elysia } from "elysia";
import type { AppDeps } from "../../deps.ts";
import { problems } from "../../platform/http/models.ts";
import { LoginBody, TokenResponse } from "./model.ts";
import { login } from "./service.ts";

export function authModule(deps: AppDeps) {
  return new Elysia({ prefix: "/auth", tags: ["auth"] }).post("/login", ({ body }) => login(deps, body.email, body.password), {
    body: LoginBody,
    response: { 200: TokenResponse, ...problems(400, 401, 413, 422, 429) },
    detail: { summary: "Exchange email and password for a bearer token (1 hour)" },
  });
}
