// Elysia builds a ValidationError's message from the whole rejected input (JSON.stringify of it, indented
// outside production: its size grows with the input times its nesting depth), unless the failing schema node
// carries its own `error`. The onError handler never uses that message (it reports the errors itself), so every
// input schema node without an `error` gets a short one and no error path stringifies what a caller sent.

type SchemaNode = Record<string, unknown>;

/** A function, so it stays out of the OpenAPI document (JSON drops functions). */
const shortMessage = () => "invalid";

function harden(node: unknown, seen: Set<unknown>): void {
  if (typeof node !== "object" || node === null || seen.has(node)) return;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const n of node) harden(n, seen);
    return;
  }
  const s = node as SchemaNode;
  if (s.error === undefined && (typeof s.type === "string" || Array.isArray(s.anyOf) || Array.isArray(s.allOf) || Array.isArray(s.oneOf) || s.not !== undefined)) {
    s.error = shortMessage;
  }
  for (const key of ["properties", "patternProperties"]) {
    const map = s[key];
    if (typeof map === "object" && map !== null) for (const child of Object.values(map)) harden(child, seen);
  }
  for (const key of ["items", "additionalProperties", "anyOf", "allOf", "oneOf", "not", "prefixItems", "additionalItems", "contains"]) {
    harden(s[key], seen);
  }
}

interface RouteLike {
  hooks?: Record<string, unknown>;
}

/**
 * Gives every body/query/params/headers schema node of the routes a short `error`. Call it once the routes are
 * registered and before the first request (Elysia compiles its validators lazily, from these same objects).
 */
export function boundValidationErrors(routes: readonly RouteLike[], models: Record<string, unknown> = {}): void {
  const seen = new Set<unknown>();
  for (const route of routes) {
    for (const part of ["body", "query", "params", "headers"]) {
      const schema = route.hooks?.[part];
      harden(typeof schema === "string" ? models[schema] : schema, seen);
    }
  }
}
