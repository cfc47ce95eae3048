// GET /swagger (and /swagger/): the API docs page, Swagger UI served from the pinned swagger-ui-dist package
// under a CSP that lets it load nothing from outside this instance; GET /swagger/json: the OpenAPI document.
// Swagger UI over Scalar: one pre-built bundle that runs under `script-src 'self'` without inline code,
// eval or web fonts fetched from a CDN.
import { dirname, join } from "node:path";
import { Elysia } from "elysia";
import { notFound } from "../../platform/http/errors.ts";
import { JSON_CONTENT_TYPE } from "../../platform/http/headers.ts";

const DIST = dirname(Bun.resolveSync("swagger-ui-dist/package.json", import.meta.dir));
const ASSETS: Record<string, { path: string; type: string }> = {
  "swagger-ui.css": { path: join(DIST, "swagger-ui.css"), type: "text/css; charset=utf-8" },
  "swagger-ui-bundle.js": { path: join(DIST, "swagger-ui-bundle.js"), type: "text/javascript; charset=utf-8" },
  "favicon-32x32.png": { path: join(DIST, "favicon-32x32.png"), type: "image/png" },
  "init.js": { path: join(import.meta.dir, "assets", "init.js"), type: "text/javascript; charset=utf-8" },
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Swagger UI's icons are data: URLs in its CSS.
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CSP,
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string): string {
  // Absolute asset URLs: the same page works at /swagger and /swagger/.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} API</title>
<link rel="icon" type="image/png" href="/swagger/assets/favicon-32x32.png">
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script src="/swagger/assets/init.js"></script>
</body>
</html>
`;
}

/** `document` builds the OpenAPI document once, on the first request (the app's routes are final by then). */
export function docsModule(opts: { title: string; document: () => Record<string, unknown> }) {
  const html = page(opts.title);
  let doc: string | undefined;
  const hidden = { detail: { hide: true } } as const;
  const serve = ({ set }: { set: { headers: Record<string, string | number> } }) => {
    Object.assign(set.headers, PAGE_HEADERS);
    return html;
  };
  return new Elysia({ name: "docs" })
    // Elysia's loose paths (strictPath off) serve /swagger/ too.
    .get("/swagger", serve, hidden)
    .get("/swagger/json", () => {
      doc ??= JSON.stringify(opts.document());
      return new Response(doc, { headers: { "content-type": JSON_CONTENT_TYPE, "cache-control": "no-cache" } });
    }, hidden)
    .get("/swagger/assets/:name", ({ params }) => {
      const asset = ASSETS[params.name];
      if (!asset) throw notFound("No such asset");
      return new Response(Bun.file(asset.path), {
        headers: { "content-type": asset.type, "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff" },
      });
    }, hidden);
}
