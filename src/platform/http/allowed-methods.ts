// The methods a path answers (RFC 9110's `Allow`), from the app's route table: a known path asked with another
// method is a 405 naming them, an OPTIONS that is not a CORS preflight a 204 naming them; an unknown path stays 404.
import { isTemplate, templateRegExp } from "./route-template.ts";

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * For a request path (as pathnameOf gives it), the `Allow` value of the routes it matches, or undefined when it
 * matches none. GET implies HEAD (the app answers it), and every known path answers OPTIONS. An `.all()` route
 * (Elysia's method `ALL`, no HTTP method) stands for every method of ORDER.
 */
export function allowedMethods(routes: readonly { method: string; path: string }[]): (pathname: string) => string | undefined {
  const table = routeTable(routes);
  return (pathname) => {
    const methods = new Set<string>();
    for (const r of table) {
      if (!r.matches(pathname)) continue;
      if (r.method === "ALL") for (const m of ORDER) methods.add(m);
      else methods.add(r.method);
    }
    if (methods.size === 0) return undefined;
    if (methods.has("GET")) methods.add("HEAD");
    methods.add("OPTIONS");
    const known = ORDER.filter((m) => methods.has(m));
    return [...known, ...[...methods].filter((m) => !ORDER.includes(m)).sort()].join(", ");
  };
}

/**
 * For a request path, the template of a route it matches whatever the method (`/api/v1/users/:id`), or undefined:
 * what a 405 or an OPTIONS on a known path is logged and labelled under instead of its raw path. Exact paths
 * first, as Elysia routes them.
 */
export function pathTemplate(routes: readonly { method: string; path: string }[]): (pathname: string) => string | undefined {
  const table = routeTable(routes);
  const exact = new Set(table.filter((r) => !r.template).map((r) => r.path));
  const patterns = table.filter((r) => r.template);
  return (pathname) => (exact.has(pathname) ? pathname : patterns.find((r) => r.matches(pathname))?.path);
}

function routeTable(routes: readonly { method: string; path: string }[]) {
  return routes.map((r) => {
    const method = r.method.toUpperCase();
    const re = isTemplate(r.path) ? templateRegExp(r.path) : undefined;
    return { method, path: r.path, template: re !== undefined, matches: (p: string) => (re === undefined ? p === r.path : re.test(p)) };
  });
}

/** Whether `method` is one of an `Allow` value's methods. */
export const allows = (allow: string, method: string) => allow.split(", ").includes(method);
