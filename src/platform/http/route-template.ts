// Route templates of the app's route table (Elysia's syntax: `/api/v1/users/:id`) and the request paths they
// match: the metric label of a request answered before Elysia routed it, and the methods a path allows (405).

/** Whether a route template (Elysia's syntax: `:id`, `:id?`, `*`) has parameters, so a path is matched by templateRegExp. */
export const isTemplate = (template: string) => /[:*]/.test(template);

/** The paths a route template (`/api/v1/users/:id`) matches. */
export function templateRegExp(template: string): RegExp {
  const source = template
    .split("/")
    .map((seg) => (seg === "*" ? ".*" : seg.startsWith(":") ? (seg.endsWith("?") ? "[^/]*" : "[^/]+") : seg.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}

/**
 * Maps a request to its route template (`/api/v1/users/:id`) in the app's route table, so ids never become label
 * values: the label of a request answered before Elysia routed it (see RequestObserver in request-context.ts).
 * Paths that match no route are labelled `unmatched`.
 */
export function routeLabeler(routes: readonly { method: string; path: string }[]): (method: string, pathname: string) => string {
  const exact = new Map<string, string>();
  const patterns: { method: string; re: RegExp; path: string }[] = [];
  for (const r of routes) {
    const method = r.method.toUpperCase();
    if (!isTemplate(r.path)) {
      exact.set(`${method} ${r.path}`, r.path);
      continue;
    }
    patterns.push({ method, re: templateRegExp(r.path), path: r.path });
  }
  return (method, pathname) => {
    const m = method === "HEAD" ? "GET" : method;
    const hit = exact.get(`${m} ${pathname}`) ?? exact.get(`ALL ${pathname}`);
    if (hit) return hit;
    for (const p of patterns) if ((p.method === m || p.method === "ALL") && p.re.test(pathname)) return p.path;
    return "unmatched";
  };
}
