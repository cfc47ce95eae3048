// The methods a path answers (RFC 9110's `Allow`), from the app's route table: a known path asked with another
// method is a 405 naming them, an OPTIONS that is not a CORS preflight a 204 naming them; an unknown path stays 404.
import { isTemplate, templateRegExp } from "../observability/metrics.ts";

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * For a request path (as pathnameOf gives it), the `Allow` value of the routes it matches, or undefined when it
 * matches none. GET implies HEAD (the app answers it), and every known path answers OPTIONS.
 */
export function allowedMethods(routes: readonly { method: string; path: string }[]): (pathname: string) => string | undefined {
  const table = routes.map((r) => {
    const method = r.method.toUpperCase();
    const re = isTemplate(r.path) ? templateRegExp(r.path) : undefined;
    return { method, matches: (p: string) => (re === undefined ? p === r.path : re.test(p)) };
  });
  return (pathname) => {
    const methods = new Set<string>();
    for (const r of table) if (r.matches(pathname)) methods.add(r.method);
    if (methods.size === 0) return undefined;
    if (methods.has("GET")) methods.add("HEAD");
    methods.add("OPTIONS");
    const known = ORDER.filter((m) => methods.has(m));
    return [...known, ...[...methods].filter((m) => !ORDER.includes(m)).sort()].join(", ");
  };
}

/** Whether `method` is one of an `Allow` value's methods. */
export const allows = (allow: string, method: string) => allow.split(", ").some((m) => m === method || m === "ALL");
