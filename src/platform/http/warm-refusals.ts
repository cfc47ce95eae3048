// The pure steps of refusing a hostile body (the shape check, the parser, the validation error and its problem),
// run in-process at start on hostile samples. The first refusals after a start otherwise run this code
// uncompiled, and a burst of them holds the event loop longer than the same burst later on. No request is made:
// no log line, metric, rate-limit or idempotency state comes of it.
import { ValidationError } from "elysia";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { TSchema } from "@sinclair/typebox";
import { problemOf, problemResponse } from "./errors.ts";
import { bodyArrived } from "./fast-write.ts";
import { parseJsonBody } from "./json-body.ts";
import { JSON_MAX_DEPTH, JSON_MAX_VALUES } from "./json-depth.ts";
import { validationProblem } from "./request-context.ts";

interface RouteLike {
  hooks?: Record<string, unknown>;
}

/**
 * Bodies refused by each check of parseJsonBody in turn (the number check's re-parse with a reviver included),
 * and a last one it parses: a long run of escapes.
 */
export function hostileTexts(): string[] {
  return [
    "[".repeat(JSON_MAX_DEPTH + 2),
    '{"a":'.repeat(JSON_MAX_DEPTH + 2),
    `[${"0,".repeat(JSON_MAX_VALUES + 1)}0]`,
    `{"a":[${"1,".repeat(200)}`,
    '{"a":"\\ud800"}',
    `[${"9".repeat(1000)}]`,
    `{"full_name":"${"\\u0000".repeat(200)}","email":"${"\\n".repeat(100)}"}`,
  ];
}

/** A value that fails `schema` in every property it names (wrong type, too long, control characters), plus one it does not name. */
function hostileValue(schema: Record<string, unknown>): unknown {
  const text = "\u0000".repeat(300);
  const props = schema.properties;
  if (typeof props !== "object" || props === null) return text;
  return { ...Object.fromEntries(Object.keys(props).map((k) => [k, text])), "\u0000unknown": [text] };
}

/** Enough rounds for the JIT to compile the refusal code past its first tier; more showed no further gain. */
const WARM_ROUNDS = 10;

/**
 * Refuses hostile samples `rounds` times through the parser and each route's body schema (the routes' own schema
 * objects, compiled here as Elysia compiles them), mapping each error to its problem response as the app's
 * onError does. Throws nothing: a sample that passes is skipped.
 */
export async function warmRefusals(routes: readonly RouteLike[], models: Record<string, unknown>, bodyLimit: number, rounds = WARM_ROUNDS): Promise<void> {
  const schemas = new Set<Record<string, unknown>>();
  for (const route of routes) {
    const body = route.hooks?.body;
    const schema = typeof body === "string" ? models[body] : body;
    if (typeof schema === "object" && schema !== null) schemas.add(schema as Record<string, unknown>);
  }
  const checks = [...schemas].flatMap((schema) => {
    // Warming only saves time: a schema this cannot compile on its own (one that refers to others) goes unwarmed
    // rather than stopping the start; Elysia compiles it its own way.
    try {
      return [{ check: TypeCompiler.Compile(schema as TSchema), value: hostileValue(schema) }];
    } catch {
      return [];
    }
  });
  const texts = hostileTexts();
  for (let r = 0; r < rounds; r++) {
    for (const text of texts) {
      const sent = new Request("http://localhost/", { method: "POST", headers: { "content-type": "application/json", "content-length": String(text.length) }, body: text });
      try {
        await parseJsonBody(await bodyArrived(sent, bodyLimit), "application/json", bodyLimit);
      } catch (err) {
        await problemResponse(problemOf(err).problem).arrayBuffer();
      }
    }
    for (const { check, value } of checks) {
      if (check.Check(value)) continue;
      await problemResponse(validationProblem(new ValidationError("body", check, value), [])).arrayBuffer();
    }
  }
}
