// TypeBox schema -> OpenAPI 3.1 Schema Object (JSON Schema 2020-12). The models are already JSON Schema; this
// drops what is not standard (Elysia's `$id: "#/components/..."` of `.model()` names becomes a `$ref`), and
// rewrites two TypeBox spellings into forms every client generator reads: a Record's `patternProperties`
// becomes `additionalProperties` (+ `propertyNames`), and a union of literals becomes an `enum`.
import { Kind } from "@sinclair/typebox";

type Json = Record<string, unknown>;

const MODEL_ID = /^#\/components\/schemas\/([A-Za-z0-9._-]+)$/;
/** TypeBox's key pattern of `Record(String, V)`: any key. */
const ANY_KEY = "^(.*)$";
/** Keys kept from a schema node: JSON Schema 2020-12 (validation, applicators, annotations). Anything else is dropped. */
const STANDARD = new Set([
  "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
  "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
  "maxProperties", "minProperties", "required", "dependentRequired", "title", "description", "default",
  "deprecated", "readOnly", "writeOnly", "examples", "contentMediaType", "contentEncoding",
]);
const CHILD = new Set(["items", "additionalProperties", "not", "contains", "propertyNames", "unevaluatedProperties", "if", "then", "else"]);
const CHILD_LIST = new Set(["anyOf", "allOf", "oneOf", "prefixItems"]);
const CHILD_MAP = new Set(["properties", "patternProperties", "$defs", "dependentSchemas"]);

/** The component name of a schema registered with Elysia's `.model()` (it sets `$id`), else undefined. */
export function modelName(schema: unknown): string | undefined {
  const id = schema && typeof schema === "object" ? (schema as Json).$id : undefined;
  return typeof id === "string" ? MODEL_ID.exec(id)?.[1] : undefined;
}

export class SchemaConverter {
  /** Component schemas met so far, by name. */
  readonly components = new Map<string, Json>();
  private readonly pending = new Set<string>();

  /** A schema as a Schema Object (`$ref` for the ones named with `.model()`). */
  convert(schema: unknown): Json {
    if (typeof schema === "string") throw new Error(`OpenAPI: route refers to model "${schema}" by name; give the schema object`);
    const name = modelName(schema);
    return name ? this.ref(name, schema) : this.inline(schema as Json);
  }

  private ref(name: string, schema: unknown): Json {
    if (!this.components.has(name) && !this.pending.has(name)) {
      this.pending.add(name);
      this.components.set(name, this.inline(schema as Json));
      this.pending.delete(name);
    }
    return { $ref: `#/components/schemas/${name}` };
  }

  private inline(node: Json): Json {
    const literal = literalUnion(node);
    if (literal) return literal;
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      if (STANDARD.has(key) || (CHILD.has(key) && typeof value === "boolean")) out[key] = value;
      else if (CHILD.has(key) && value && typeof value === "object") out[key] = this.convert(value);
      else if (CHILD_LIST.has(key) && Array.isArray(value)) out[key] = value.map((v) => this.convert(v));
      else if (CHILD_MAP.has(key) && value && typeof value === "object") {
        out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, this.convert(v)]));
      }
    }
    return recordAsMap(out, node);
  }
}

/** `Record(K, V)`: TypeBox writes `patternProperties: {K: V}`; generators read `additionalProperties: V` far better. */
function recordAsMap(out: Json, node: Json): Json {
  const patterns = out.patternProperties as Json | undefined;
  if (!patterns || (node as Record<symbol, unknown>)[Kind] !== "Record") return out;
  const keys = Object.keys(patterns);
  if (keys.length !== 1) return out;
  const key = keys[0]!;
  if (key !== ANY_KEY && node.additionalProperties !== false) return out;
  const { patternProperties: _, ...rest } = out;
  const map: Json = { ...rest, additionalProperties: patterns[key] };
  if (key !== ANY_KEY) map.propertyNames = { type: "string", pattern: key };
  return map;
}

/** A union whose members are all literals (or null, or such unions): `{type, enum}`, null kept as `anyOf` with `{type: "null"}`. */
function literalUnion(node: Json): Json | undefined {
  if (!Array.isArray(node.anyOf)) return undefined;
  const values: unknown[] = [];
  let hasNull = false;
  const walk = (members: unknown[]): boolean =>
    members.every((m) => {
      const s = m as Json;
      if (s.type === "null") return (hasNull = true);
      if (Array.isArray(s.anyOf)) return walk(s.anyOf);
      if ("const" in s && (typeof s.const === "string" || typeof s.const === "number")) return values.push(s.const) > 0;
      return false;
    });
  if (!walk(node.anyOf) || values.length === 0) return undefined;
  const types = new Set(values.map((v) => (typeof v === "string" ? "string" : Number.isInteger(v) ? "integer" : "number")));
  if (types.size !== 1) return undefined;
  const annotations: Json = {};
  for (const k of ["description", "title", "examples", "default"]) if (k in node) annotations[k] = node[k];
  const enumSchema: Json = { type: [...types][0], enum: values };
  return hasNull ? { ...annotations, anyOf: [enumSchema, { type: "null" }] } : { ...annotations, ...enumSchema };
}
