// GET /admin: the operations dashboard, one self-contained page (inline CSS and JS, no CDN, no build step).
// Anyone may load it; its data calls carry the admin's bearer token. Hidden from the OpenAPI document.
import { Elysia } from "elysia";
import type { Feature } from "../../platform/feature.ts";
import { dashboardPage } from "./page.ts";

export function dashboardModule() {
  const { html, headers } = dashboardPage();
  return new Elysia({ name: "dashboard", tags: ["dashboard"] }).get(
    "/admin",
    ({ set }) => {
      Object.assign(set.headers, headers);
      return html;
    },
    { detail: { hide: true, summary: "Operations dashboard (HTML page)" } },
  );
}

/** The /admin page: static, it reads everything through the admin API with the signed-in admin's token. */
export function dashboardFeature(): Feature {
  return { name: "dashboard", mount: "site", routes: dashboardModule() };
}
