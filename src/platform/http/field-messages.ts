// The 422 messages of a field that has no hand-written one (models.ts withMessage): said from the schema and
// the kind of failure, naming what to send, instead of TypeBox's own texts ("Property '' should not be provided").
import { ValueErrorType } from "@sinclair/typebox/errors";
import { fieldMessageOf } from "./models.ts";
import { INEXACT_NUMBER_MESSAGE } from "./json-body.ts";

type Node = Record<string, unknown>;
const asNode = (s: unknown): Node | undefined => (typeof s === "object" && s !== null ? (s as Node) : undefined);
const plural = (n: unknown, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** A key the object schema `schema` does not take: a field the request has no use for, or a key of the wrong form. */
export function unknownKeyMessage(schema: unknown, key: string): string {
  const patterns = asNode(asNode(schema)?.patternProperties);
  const forms = patterns === undefined ? [] : Object.keys(patterns);
  if (forms.length > 0) return `has the key ${JSON.stringify(key)}, which is not of the accepted form (${forms.join(" or ")})`;
  return key === "" ? 'has the unknown field "" (no field of this request has an empty name)' : "is an unknown field: this request does not take it";
}

/** What a value of `schema` is, for "must be …": its own message when it has one. */
export function expectedOf(schema: unknown): string | undefined {
  const own = fieldMessageOf(schema);
  if (own !== undefined) return own;
  const s = asNode(schema);
  if (s === undefined) return undefined;
  if (Array.isArray(s.anyOf)) {
    const parts = s.anyOf.map((b) => expectedOf(b)?.replace(/^must be /, ""));
    return parts.every((p) => p !== undefined) ? `must be ${parts.join(" or ")}` : undefined;
  }
  if ("const" in s) return `must be ${JSON.stringify(s.const)}`;
  switch (s.type) {
    case "string":
      return "must be text";
    case "integer":
      return "must be an integer";
    case "number":
      return "must be a number";
    case "boolean":
      return "must be true or false";
    case "null":
      return "must be null";
    case "array":
      return "must be a list";
    case "object":
      return "must be an object";
  }
  return undefined;
}

interface SchemaError {
  type?: number;
  schema?: unknown;
  path?: string;
  value?: unknown;
}

/**
 * The message of one TypeBox error: "is required" for a missing field, else the field's own (withMessage), else
 * one said from the failure's kind and the schema's bounds; undefined for a kind not listed here (the caller falls back to TypeBox's summary).
 */
export function fieldMessage(e: SchemaError): string | undefined {
  const s = asNode(e.schema) ?? {};
  // Reported with the object's schema: the object's own message would describe the object, not the extra key.
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return unknownKeyMessage(s, ((e.path ?? "").split("/").pop() ?? "").replace(/~1/g, "/").replace(/~0/g, "~"));
  // Reported with the missing property's schema: its own message would describe a value that is not there.
  if (e.type === ValueErrorType.ObjectRequiredProperty) return "is required";
  const own = fieldMessageOf(e.schema);
  if (own !== undefined) return own;
  switch (e.type) {
    case ValueErrorType.ObjectMaxProperties:
      return `must have at most ${plural(s.maxProperties, "key", "keys")}`;
    case ValueErrorType.ObjectMinProperties:
      return `must have at least ${plural(s.minProperties, "key", "keys")}`;
    case ValueErrorType.ArrayMaxItems:
      return `must hold at most ${plural(s.maxItems, "item", "items")}`;
    case ValueErrorType.ArrayMinItems:
      return `must hold at least ${plural(s.minItems, "item", "items")}`;
    case ValueErrorType.ArrayUniqueItems:
      return "must not hold the same item twice";
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${s.maximum}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${s.minimum}`;
    case ValueErrorType.IntegerExclusiveMaximum:
    case ValueErrorType.NumberExclusiveMaximum:
      return `must be less than ${s.exclusiveMaximum}`;
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum:
      return `must be more than ${s.exclusiveMinimum}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${plural(s.maxLength, "character", "characters")}`;
    case ValueErrorType.StringMinLength:
      return `must be at least ${plural(s.minLength, "character", "characters")}`;
  }
  return expectedOf(e.schema);
}

/** The schema of the value at `path` (dot-separated, as the 422's fields are) under `schema`; null: a key it does not take. */
export function schemaAt(schema: unknown, path: string[]): unknown {
  let at = asNode(schema);
  for (const key of path) {
    if (at === undefined) return undefined;
    if (at.type === "array") {
      at = asNode(at.items);
      continue;
    }
    if (at.type !== "object") return undefined;
    const props = asNode(at.properties);
    if (props !== undefined && key in props) {
      at = asNode(props[key]);
      continue;
    }
    const patterns = asNode(at.patternProperties) ?? {};
    const matched = Object.entries(patterns).find(([p]) => new RegExp(p).test(key));
    if (matched !== undefined) at = asNode(matched[1]);
    else if (at.additionalProperties === false) return null;
    else at = asNode(at.additionalProperties);
  }
  return at;
}

/** Whether a schema node may take a number (one without a type, such as t.Unknown, may). */
function takesNumber(schema: unknown): boolean {
  const s = asNode(schema);
  if (s === undefined) return true;
  if (Array.isArray(s.anyOf)) return s.anyOf.some(takesNumber);
  return s.type === undefined || s.type === "number" || s.type === "integer";
}

/**
 * The message of a number the parser refused as not kept exactly (json-body.ts) at `field` of a body of
 * `schema`: the number message only where a number belongs; elsewhere what belongs there (a text field's own
 * message, "unknown field"), which is the fix the caller needs.
 */
export function inexactNumberMessage(schema: unknown, field: string): string {
  const path = field === "body" ? [] : field.split(".");
  const at = schemaAt(schema, path);
  if (at === null) return unknownKeyMessage(schemaAt(schema, path.slice(0, -1)), path.at(-1) ?? "");
  if (takesNumber(at)) return INEXACT_NUMBER_MESSAGE;
  return expectedOf(at) ?? INEXACT_NUMBER_MESSAGE;
}
