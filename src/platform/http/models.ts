// Schema building blocks shared by the modules. The same TypeBox objects validate requests and become the
// OpenAPI document (src/platform/http/openapi.ts), so they carry standard JSON Schema keywords only; the
// 422 message of a field rides on a symbol, which JSON never sees.
import { FormatRegistry, Kind, Type, TypeRegistry, type IntegerOptions, type StringOptions, type TProperties, type TSchema } from "@sinclair/typebox";
import { t } from "elysia";
import { decimalValue } from "./decimal-reader.ts";

const FIELD_MESSAGE = Symbol.for("neodyme-edge.field-message");

/** Gives a schema the message its 422 names the field with (instead of TypeBox's wording). */
export function withMessage<T extends TSchema>(schema: T, message: string): T {
  Object.defineProperty(schema, FIELD_MESSAGE, { value: message, enumerable: true });
  return schema;
}

export function fieldMessageOf(schema: unknown): string | undefined {
  return schema && typeof schema === "object" ? (schema as Record<symbol, string | undefined>)[FIELD_MESSAGE] : undefined;
}

/**
 * A JSON integer (bodies and responses). TypeBox's own, not Elysia's `t.Integer`, which also accepts numeric
 * strings and therefore documents as "string or integer".
 */
export const Int = (options?: IntegerOptions) => Type.Integer(options);

/** A path or query value: the canonical decimal text of a safe integer (no sign, leading zero, fraction, exponent or prefix). */
TypeRegistry.Set<{ minimum?: number; maximum?: number }>("DecimalInteger", (schema, value) => {
  // A number only arrives here as the schema's own default, inserted before the check.
  const n = typeof value === "string" ? (decimalValue(value) ?? NaN) : value;
  return (
    typeof n === "number" &&
    Number.isSafeInteger(n) &&
    (schema.minimum === undefined || n >= schema.minimum) &&
    (schema.maximum === undefined || n <= schema.maximum)
  );
});

interface DecimalOptions {
  minimum: number;
  maximum: number;
  default?: number;
  description?: string;
  examples?: number[];
}

/**
 * An integer carried as text in a path or query string, decoded to a number in this one place. Its JSON is
 * `{type: "integer", minimum, maximum}`: the document says "an integer in this range", and the check accepts
 * exactly the way a client serializes one (decimal digits), nothing looser.
 */
export function DecimalInt(options: DecimalOptions) {
  // Typed as the number it decodes to (Elysia types a route's params by the schema's static type).
  const inner = Type.Unsafe<number>({ [Kind]: "DecimalInteger", type: "integer", ...options });
  const schema = Type.Transform(inner)
    .Decode((text) => Number(text))
    .Encode((n) => n);
  return withMessage(schema, `must be an integer from ${options.minimum} to ${options.maximum} in decimal digits`);
}

/**
 * Whether `text` has `min` to `max` characters as JSON Schema counts them (code points: a surrogate pair is one).
 * Most strings are decided by their UTF-16 length alone, which is between one and two units per code point.
 */
export function lengthWithin(text: string, min: number, max: number): boolean {
  const units = text.length;
  if (units < min || units > 2 * max) return false;
  if (units <= max && units >= 2 * min) return true;
  let points = units;
  for (let i = 0; i < units - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        points--;
        i++;
      }
    }
  }
  return points >= min && points <= max;
}

const patterns = new Map<string, RegExp>();
/** A string as JSON Schema checks one: lengths in code points; pattern and format as TypeBox checks them. */
TypeRegistry.Set<Pick<StringOptions, "minLength" | "maxLength" | "pattern" | "format">>("Chars", (schema, value) => {
  if (typeof value !== "string") return false;
  if ((schema.minLength !== undefined || schema.maxLength !== undefined) && !lengthWithin(value, schema.minLength ?? 0, schema.maxLength ?? Infinity)) {
    return false;
  }
  if (schema.pattern !== undefined) {
    let re = patterns.get(schema.pattern);
    // Compiled as TypeBox compiles a pattern (no flags), once per pattern.
    if (re === undefined) patterns.set(schema.pattern, (re = new RegExp(schema.pattern)));
    if (!re.test(value)) return false;
  }
  if (schema.format !== undefined) {
    const format = FormatRegistry.Get(schema.format);
    if (format === undefined || !format(value)) return false;
  }
  return true;
});

/**
 * A JSON string whose `minLength` and `maxLength` count characters (code points), as the OpenAPI document's JSON
 * Schema says and as clients generated from it check: TypeBox's `t.String` counts UTF-16 code units, so a name of
 * emoji would be refused at half its documented length. Its JSON is a plain `{type: "string", ...}`.
 */
export function Chars(options: StringOptions = {}) {
  return Type.Unsafe<string>({ ...options, [Kind]: "Chars", type: "string" });
}

// C0 controls, DEL and C1 controls: NUL truncated stored text, and none of them belongs in a name or a title.
const SINGLE_LINE = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";
// The same, but tab, line feed and carriage return are text in a post or a preference.
const MULTI_LINE = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";
// A name or a title shown to others: also no bidi controls (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069),
// which reorder what surrounds them, and no invisible characters (U+200B, U+2028-U+2029, U+2060-U+2064, U+FEFF),
// which make two different names look the same. Joiners (U+200C, U+200D) stay: scripts and emoji need them.
// And at least one character that shows (the lookahead): not white space, and not one that draws nothing by itself,
// so a name cannot be made of joiners, fillers or marks alone.
const BLANK_ALONE = [
  "\\s",
  "\\u00AD", // soft hyphen
  "\\u0300-\\u036F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u20D0-\\u20FF\\uFE20-\\uFE2F", // combining marks, drawn on what precedes them
  "\\u034F", // combining grapheme joiner
  "\\u115F\\u1160\\u3164\\uFFA0", // Hangul fillers
  "\\u17B4\\u17B5", // Khmer inherent vowels
  "\\u180B-\\u180F", // Mongolian variation selectors and vowel separator
  "\\u200C\\u200D", // joiners
  "\\u2800", // braille blank
  "\\uFE00-\\uFE0F", // variation selectors
  // Low surrogates: an astral character counts by its high surrogate, so the tag characters (U+E0000-U+E007F) and
  // the supplementary variation selectors (U+E0100-U+E01EF) are refused as whole pairs below. Patterns are compiled
  // without the `u` flag (as TypeBox does); a validator that adds `u` (Ajv) reads these two ranges as showing.
  "\\uDC00-\\uDFFF",
].join("");
const SHOWS = `(?!\\uDB40[\\uDC00-\\uDC7F\\uDD00-\\uDDEF])[^${BLANK_ALONE}]`;
const VISIBLE_LINE = `^(?=.*?${SHOWS})[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$`;

/**
 * User-supplied text (Chars: lengths in characters): refuses control characters (multiline: except tab, LF and CR)
 * with a 422 naming the field; `visible` (names, titles) also refuses bidi controls, invisible characters and
 * text that shows nothing (white space, joiners, fillers, marks alone).
 */
export function Text(options: Omit<StringOptions, "pattern"> & { multiline?: boolean; visible?: boolean } = {}) {
  const { multiline, visible, ...rest } = options;
  const { minLength, maxLength } = rest;
  const size =
    minLength !== undefined && maxLength !== undefined
      ? `${minLength} to ${maxLength} characters`
      : maxLength !== undefined
        ? `at most ${maxLength} characters`
        : "text";
  const allowed = multiline
    ? " without control characters other than tab and line breaks"
    : visible
      ? ", not only white space or characters that show nothing alone, without control characters, bidi controls or invisible characters"
      : " without control characters";
  const pattern = multiline ? MULTI_LINE : visible ? VISIBLE_LINE : SINGLE_LINE;
  return withMessage(Chars({ ...rest, pattern }), `must be ${size}${allowed}`);
}

/** RFC 9457 problem details: every error body (application/problem+json). */
export const ProblemSchema = t.Object(
  {
    type: t.String({ format: "uri", description: "Identifies the kind of problem", examples: ["https://neodyme-edge.dev/problems/not-found"] }),
    title: t.String({ description: "Short summary of the kind of problem", examples: ["Not Found"] }),
    status: Int({ minimum: 400, maximum: 599, description: "The HTTP status of the response", examples: [404] }),
    detail: t.String({ description: "What went wrong with this request", examples: ["No user has id 42"] }),
    errors: t.Optional(
      t.Array(t.Object({ field: t.String(), message: t.String() }), {
        description: "For 422: one entry per field that did not validate",
      }),
    ),
  },
  { description: "RFC 9457 problem details" },
);

export const UserId = DecimalInt({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "A user's id", examples: [42] });
export const IdParams = t.Object({ id: UserId });

/**
 * A route's query schema: these properties and no others, each given once. Elysia's query parser keeps the last
 * of a repeated key (`?page=1&page=2` read page 2); each property here carries the marker of Elysia's
 * `t.ArrayQuery`, so the parser collects a repeated key into an array instead, which no property's check accepts:
 * a 422 naming the field. The marker is not enumerable, so the OpenAPI document never shows it, and it is set on
 * the properties of the finished object (TypeBox's `t.Optional` copies a schema's enumerable keys only).
 */
export function QuerySchema<P extends TProperties>(properties: P) {
  const schema = t.Object(properties, { additionalProperties: false });
  for (const property of Object.values(schema.properties)) {
    Object.defineProperty(property, "elysiaMeta", { value: "ArrayQuery", enumerable: false, configurable: true });
  }
  return schema;
}

export const PageQuery = QuerySchema({
  page: t.Optional(DecimalInt({ minimum: 1, maximum: 1_000_000, default: 1, description: "1-based page number", examples: [1] })),
  limit: t.Optional(DecimalInt({ minimum: 1, maximum: 100, default: 10, description: "Items per page", examples: [10] })),
});

/**
 * `Page<T>`: register the result with `.model()` under a name (UserPage, PostPage) so the document names it.
 * `order` says how the items are sorted.
 */
export const page = <T extends TSchema>(item: T, itemName: string, order: string) =>
  t.Object(
    {
      items: t.Array(item),
      page: Int({ minimum: 1, description: "This page's number" }),
      limit: Int({ minimum: 1, description: "Items per page asked for" }),
      total: Int({ minimum: 0, description: "Items on all pages" }),
    },
    { title: `Page<${itemName}>`, description: `One page of ${itemName} items, ${order}` },
  );

/** Response headers for a route's `detail.responses[status].headers`, as references to the document's header components. */
export const responseHeaders = (...names: string[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${headerComponentName(name)}` }]));

/** `retry-after` -> `RetryAfter`: the component name of a response header. */
export const headerComponentName = (header: string) =>
  header
    .split("-")
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join("");

/** Problem responses a route may give. Their meaning per route goes in `detail.responses[status].description`. */
export const problems = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, ProblemSchema])) as Record<number, typeof ProblemSchema>;
