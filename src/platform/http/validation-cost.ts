// Elysia builds a ValidationError's message from the whole rejected input (JSON.stringify of it, indented
// outside production: its size grows with the input times its nesting depth), unless the failing schema node
// carries its own `error`. The onError handler never uses that message (it reports the errors itself), so every
// input schema node without an `error` gets a short one and no error path stringifies what a caller sent.

import { OptionalKind } from "@sinclair/typebox";

type SchemaNode = Record<string, unknown>;

/**
 * A string, so that Elysia takes it as the message as it is: given a function, it first builds the function's
 * argument, which outside production holds every error of the input (a second pass of the error iterator) and
 * an example value of the schema. Not enumerable, so it stays out of the OpenAPI document.
 */
function giveShortMessage(node: SchemaNode): void {
  Object.defineProperty(node, "error", { value: "invalid", enumerable: false, writable: true, configurable: true });
}

function harden(node: unknown, seen: Set<unknown>): void {
  if (typeof node !== "object" || node === null || seen.has(node)) return;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const n of node) harden(n, seen);
    return;
  }
  const s = node as SchemaNode;
  if (s.error === undefined && (typeof s.type === "string" || Array.isArray(s.anyOf) || Array.isArray(s.allOf) || Array.isArray(s.oneOf) || s.not !== undefined)) {
    giveShortMessage(s);
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

/**
 * An upper bound of the values (array elements, object members) a body valid under `schema` can hold, or
 * Infinity when the schema does not bound it. The parser refuses bodies far above it before parsing them.
 */
export function valueBudget(schema: unknown, depth = 0): number {
  if (typeof schema !== "object" || schema === null || depth > 32) return Infinity;
  const s = schema as SchemaNode;
  for (const key of ["anyOf", "oneOf"]) {
    const branches = s[key];
    if (Array.isArray(branches)) return Math.max(0, ...branches.map((b) => valueBudget(b, depth + 1)));
  }
  if (s.type === "array") {
    const max = typeof s.maxItems === "number" ? s.maxItems : Infinity;
    return max * (1 + valueBudget(s.items, depth + 1));
  }
  if (s.type === "object") {
    let total = 0;
    const props = (s.properties ?? {}) as Record<string, unknown>;
    for (const p of Object.values(props)) total += 1 + valueBudget(p, depth + 1);
    const patterns = s.patternProperties as Record<string, unknown> | undefined;
    const open = s.additionalProperties !== false || (patterns !== undefined && Object.keys(patterns).length > 0);
    if (open) {
      const max = typeof s.maxProperties === "number" ? s.maxProperties : Infinity;
      const each = patterns ? Math.max(0, ...Object.values(patterns).map((v) => valueBudget(v, depth + 1))) : valueBudget(s.additionalProperties, depth + 1);
      total = Math.max(total, max * (1 + (Number.isFinite(each) ? each : 0)));
      if (!Number.isFinite(max)) return Infinity;
    }
    return total;
  }
  return 0;
}

/**
 * Per route ("METHOD path"), the value count the body parser allows: twice the schema's bound plus a margin
 * (duplicate keys, a client's extra fields to be refused by validation), within the global cap.
 */
export function bodyValueCaps(routes: readonly (RouteLike & { method: string; path: string })[], models: Record<string, unknown>, globalCap: number): Map<string, number> {
  const caps = new Map<string, number>();
  for (const r of routes) {
    const body = r.hooks?.body;
    if (body === undefined) continue;
    caps.set(`${r.method} ${r.path}`, bodyValueCap(typeof body === "string" ? models[body] : body, globalCap));
  }
  return caps;
}

/** The value count the body parser allows for a body schema (see bodyValueCaps). */
export function bodyValueCap(schema: unknown, globalCap: number): number {
  const budget = valueBudget(schema);
  return Math.min(globalCap, Number.isFinite(budget) ? 2 * budget + 16 : globalCap);
}

/** "METHOD path" of the routes whose body may be left out (`body: t.Optional(...)`, as the document reads it). */
export function optionalBodyRouteKeys(routes: readonly (RouteLike & { method: string; path: string })[], models: Record<string, unknown>): string[] {
  return routes
    .filter((r) => {
      const body = r.hooks?.body;
      const schema = typeof body === "string" ? models[body] : body;
      return typeof schema === "object" && schema !== null && OptionalKind in schema;
    })
    .map((r) => `${r.method} ${r.path}`);
}
